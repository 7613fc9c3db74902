import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { scanTree } from '../../../builder/snapshot/scan.js';
import { sh } from '../../support/tree-state.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-scan-'));
after(() => rmSync(work, { recursive: true, force: true }));

function newTree(script: string): string {
  const root = mkdtempSync(join(work, 'tree-'));
  sh(script, root);
  return root;
}

/** `stat` fields of a path as the coreutils command prints them. */
function statCommand(path: string): string[] {
  return execFileSync('stat', ['-c', '%a|%u|%g|%s|%.9Y|%.9Z|%i|%h|%t|%T', path]).toString().trim().split('|');
}

function nsText(ns: bigint): string {
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

test('records the stat fields of every kind of path, as stat(1) reports them', async () => {
  const root = newTree(`
    mkdir -p d/e; chmod 1777 d
    printf 12345 > d/e/f; chown 123456:654321 d/e/f; chmod 4751 d/e/f
    ln d/e/f d/hard; ln -s ../nowhere d/link; mkfifo d/fifo; mknod d/dev c 4 67; mknod d/blk b 259 70000
  `);
  const snapshot = await scanTree(root);
  assert.deepEqual([...snapshot.keys()].sort(), ['d', 'd/blk', 'd/dev', 'd/e', 'd/e/f', 'd/fifo', 'd/hard', 'd/link']);
  const types = Object.fromEntries([...snapshot].map(([path, node]) => [path, node.type]));
  assert.deepEqual(types, { d: 'directory', 'd/blk': 'block', 'd/dev': 'char', 'd/e': 'directory', 'd/e/f': 'file', 'd/fifo': 'fifo', 'd/hard': 'file', 'd/link': 'symlink' });
  for (const [path, node] of snapshot) {
    const [mode, uid, gid, size, mtime, ctime, ino, nlink, major, minor] = statCommand(join(root, path));
    assert.deepEqual(
      [node.mode.toString(8), node.uid, node.gid, node.size, nsText(node.mtimeNs), nsText(node.ctimeNs), node.ino, node.nlink],
      [mode, Number(uid), Number(gid), BigInt(size), mtime, ctime, BigInt(ino), Number(nlink)],
      path,
    );
    if (node.type === 'char' || node.type === 'block') {
      const rdev = node.rdev;
      // Linux dev_t: the major number's low 12 bits sit at bits 8-19, the minor's low 8 bits at 0-7 and the rest at 20+.
      const decoded = [((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn), (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)];
      assert.deepEqual(decoded, [BigInt(`0x${major}`), BigInt(`0x${minor}`)], path);
    }
  }
  assert.equal(snapshot.get('d')!.mode, 0o1777);
  assert.equal(snapshot.get('d/e/f')!.mode, 0o4751);
  assert.equal(snapshot.get('d/link')!.linkTarget, '../nowhere');
  assert.equal(snapshot.get('d/e/f')!.ino, snapshot.get('d/hard')!.ino);
});

test('excluded paths are left out with everything under them', async () => {
  const root = newTree('mkdir -p keep/a skip/b proc; touch keep/a/x skip/b/y proc/z top');
  const snapshot = await scanTree(root, { exclude: (path) => path === 'skip' || path === 'proc/z' });
  assert.deepEqual([...snapshot.keys()].sort(), ['keep', 'keep/a', 'keep/a/x', 'proc', 'top']);
});

test('sockets are not recorded', async () => {
  const root = newTree('touch file');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(root, 'sock'), resolve));
  try {
    assert.deepEqual([...(await scanTree(root)).keys()], ['file']);
  } finally {
    server.close();
  }
});

test('names with spaces, newlines, backslashes and non-ASCII characters are kept exactly', async () => {
  const root = newTree(`mkdir 'a b'; touch 'a b/new
line' 'a b/back\\slash' 'a b/ünï'`);
  assert.deepEqual([...(await scanTree(root)).keys()].sort(), ['a b', 'a b/back\\slash', 'a b/new\nline', 'a b/ünï']);
});

test('a new scan of a root shares the nodes of the last one where nothing changed, and has fresh ones where something did', async () => {
  const root = newTree(`mkdir d; printf a > d/same; printf b > d/edited; printf c > d/chmodded; ln -s same d/link`);
  const first = await scanTree(root);
  sh('printf bb > d/edited; chmod 600 d/chmodded; printf n > d/new', root);
  const second = await scanTree(root);
  assert.equal(second.get('d/same'), first.get('d/same'));
  assert.equal(second.get('d/link'), first.get('d/link'));
  for (const changed of ['d', 'd/edited', 'd/chmodded']) assert.notEqual(second.get(changed), first.get(changed), changed);
  assert.equal(second.get('d/edited')!.size, 2n);
  assert.equal(second.get('d/chmodded')!.mode, 0o600);
  assert.ok(second.has('d/new'));
  // What is shared is what a scan of its own would record.
  const fresh = await scanTree(root, { exclude: () => false });
  assert.deepEqual(second, fresh);
});
