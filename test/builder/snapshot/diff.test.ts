import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { LayerEntry } from '../../../layers/entry.js';
import { diffTrees } from '../../../builder/snapshot/diff.js';
import { scanTree } from '../../../builder/snapshot/scan.js';
import { applyEntries, sh, summary, treeState } from '../../support/tree-state.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-diff-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The "before" tree every scenario starts from. */
const BASE = `
mkdir -p etc/sub usr/bin var/lib/d data/dir
echo conf > etc/conf; echo x > etc/sub/a; echo y > etc/sub/b
echo tool > usr/bin/tool; chmod 755 usr/bin/tool
echo lib > var/lib/d/f
echo old > data/file; echo c > data/dir/c; echo shared > data/orig
ln -s ../etc/conf data/rel-link
setfattr -n user.kept -v 0x00ff data/file
`;

interface StepResult {
  root: string;
  entries: LayerEntry[];
  byPath: Map<string, LayerEntry>;
}

/**
 * Builds the base tree, runs `change` on it (a shell script run in the tree, or a function of its
 * path), and returns the diff's entries. Unless `roundTrip` is false, the layer made from them is
 * applied onto a `cp -a` copy of the before tree, which must then equal the after tree.
 */
async function runStep(change: string | ((root: string) => Promise<void> | void), options: { roundTrip?: boolean } = {}): Promise<StepResult> {
  const dir = await mkdtemp(join(work, 'case-'));
  const root = join(dir, 'root');
  const copy = join(dir, 'copy');
  sh(`mkdir root; cd root; ${BASE}`, dir);
  sh('cp -a root copy', dir);
  const before = await scanTree(root);
  if (typeof change === 'string') sh(change, root);
  else await change(root);
  const afterScan = await scanTree(root);
  const entries = await diffTrees(before, afterScan, root);
  if (options.roundTrip !== false) {
    await applyEntries(entries, copy, dir);
    assert.deepEqual(await treeState(copy), await treeState(root), 'applying the layer to the before tree gives the after tree');
  }
  return { root, entries, byPath: new Map(entries.map((entry) => [entry.path, entry])) };
}

async function contents(entry: LayerEntry | undefined): Promise<Buffer> {
  assert.ok(entry?.open, `${entry?.path} has contents`);
  const chunks: Buffer[] = [];
  for await (const chunk of entry.open() as Readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('an unchanged tree gives no entries', async () => {
  const { entries } = await runStep('true');
  assert.deepEqual(entries, []);
});

test('added files and directories come with contents, sizes and metadata', async () => {
  const { entries, byPath } = await runStep('mkdir -p new/deep; printf hello > new/deep/f; chmod 640 new/deep/f');
  assert.deepEqual(summary(entries), { new: 'directory', 'new/deep': 'directory', 'new/deep/f': 'file' });
  const file = byPath.get('new/deep/f')!;
  assert.equal(file.size, 5);
  assert.equal(file.mode, 0o640);
  assert.deepEqual(await contents(file), Buffer.from('hello'));
});

test('a modified file brings every parent directory with its current metadata', async () => {
  const { root, entries, byPath } = await runStep('chmod 750 etc; echo more >> etc/sub/a');
  assert.deepEqual(summary(entries), { etc: 'directory', 'etc/sub': 'directory', 'etc/sub/a': 'file' });
  assert.equal(byPath.get('etc')!.mode, 0o750);
  assert.equal(byPath.get('etc/sub')!.mtime, Math.floor(statSync(join(root, 'etc/sub')).mtimeMs / 1000));
  assert.deepEqual(await contents(byPath.get('etc/sub/a')), Buffer.from('x\nmore\n'));
});

test('deleted files and directories become whiteouts, none under a deleted directory', async () => {
  const { entries } = await runStep('rm etc/sub/b; rm -rf var/lib/d');
  assert.deepEqual(summary(entries), {
    etc: 'directory',
    'etc/sub': 'directory',
    'etc/sub/b': 'whiteout',
    var: 'directory',
    'var/lib': 'directory',
    'var/lib/d': 'whiteout',
  });
});

test('a directory replaced by a file needs no whiteouts for its old contents', async () => {
  const { entries } = await runStep('rm -rf data/dir; echo now-a-file > data/dir');
  assert.deepEqual(summary(entries), { data: 'directory', 'data/dir': 'file' });
});

test('a file replaced by a directory is marked opaque and brings its children', async () => {
  const { entries } = await runStep('rm etc/conf; mkdir etc/conf; echo in > etc/conf/x');
  const kinds = entries.map((entry) => `${entry.path}:${entry.type}`);
  assert.deepEqual(kinds, ['etc:directory', 'etc/conf:directory', 'etc/conf:opaque', 'etc/conf/x:file']);
});

test('a replaced directory gets an opaque marker, its new children, and no whiteouts', async () => {
  const { entries } = await runStep('rm -rf etc/sub; mkdir etc/sub; echo z > etc/sub/z');
  const kinds = entries.map((entry) => `${entry.path}:${entry.type}`);
  assert.deepEqual(kinds, ['etc:directory', 'etc/sub:directory', 'etc/sub:opaque', 'etc/sub/z:file']);
});

test('file, directory and symlink replace each other', async () => {
  const { byPath } = await runStep('rm data/file; ln -s /etc/hostname data/file; rm data/rel-link; echo f > data/rel-link');
  assert.equal(byPath.get('data/file')?.type, 'symlink');
  assert.equal(byPath.get('data/file')?.linkTarget, '/etc/hostname');
  assert.equal(byPath.get('data/rel-link')?.type, 'file');
});

test('absolute, relative and dangling symlinks keep their targets as written', async () => {
  const { byPath } = await runStep('ln -s /usr/bin/tool abs; ln -s ../etc/conf usr/rel; ln -s does/not/exist dangling');
  assert.deepEqual(
    ['abs', 'usr/rel', 'dangling'].map((path) => [byPath.get(path)?.type, byPath.get(path)?.linkTarget]),
    [['symlink', '/usr/bin/tool'], ['symlink', '../etc/conf'], ['symlink', 'does/not/exist']],
  );
});

test('chmod alone, including setuid, setgid and sticky bits, produces the entry again', async () => {
  const { entries, byPath } = await runStep('chmod 4755 usr/bin/tool; chmod 2755 etc/sub; chmod 1777 var/lib');
  assert.equal(byPath.get('usr/bin/tool')?.mode, 0o4755);
  assert.equal(byPath.get('etc/sub')?.mode, 0o2755);
  assert.equal(byPath.get('var/lib')?.mode, 0o1777);
  assert.deepEqual(Object.keys(summary(entries)).sort(), ['etc', 'etc/sub', 'usr', 'usr/bin', 'usr/bin/tool', 'var', 'var/lib']);
});

test('chown to arbitrary ids produces the entry with the new owner', async () => {
  const { byPath } = await runStep('chown 123456:654321 etc/conf; chown -h 70000:70001 data/rel-link');
  assert.deepEqual([byPath.get('etc/conf')?.uid, byPath.get('etc/conf')?.gid], [123456, 654321]);
  assert.deepEqual([byPath.get('data/rel-link')?.uid, byPath.get('data/rel-link')?.gid], [70000, 70001]);
});

test('FIFOs and device nodes are entries', async () => {
  const { byPath } = await runStep('mkfifo -m 600 data/pipe; mknod -m 666 data/null c 1 3; mknod -m 660 data/blk b 7 200');
  assert.equal(byPath.get('data/pipe')?.type, 'fifo');
  assert.equal(byPath.get('data/pipe')?.mode, 0o600);
  assert.deepEqual([byPath.get('data/null')?.type, byPath.get('data/null')?.devMajor, byPath.get('data/null')?.devMinor], ['char', 1, 3]);
  assert.deepEqual([byPath.get('data/blk')?.type, byPath.get('data/blk')?.devMajor, byPath.get('data/blk')?.devMinor], ['block', 7, 200]);
});

test('sockets are left out', async () => {
  const servers: ReturnType<typeof createServer>[] = [];
  try {
    const { entries } = await runStep(
      async (root) => {
        const server = createServer();
        servers.push(server);
        await new Promise<void>((resolve) => server.listen(join(root, 'data/sock'), resolve));
      },
      { roundTrip: false },
    );
    assert.deepEqual(summary(entries), { data: 'directory' });
  } finally {
    for (const server of servers) server.close();
  }
});

test('files hardlinked within the step become one file and links to it', async () => {
  const { entries } = await runStep('echo h > data/h2; ln data/h2 data/h1; ln data/h2 etc/h3');
  assert.deepEqual(summary(entries), {
    data: 'directory',
    'data/h1': 'file',
    'data/h2': 'hardlink:data/h1',
    etc: 'directory',
    'etc/h3': 'hardlink:data/h1',
  });
});

test('a new link to a pre-existing file puts both paths in the layer, linked', async () => {
  const { entries } = await runStep('ln data/orig data/zz-link; ln data/orig usr/a-link');
  assert.deepEqual(summary(entries), {
    data: 'directory',
    'data/orig': 'file',
    'data/zz-link': 'hardlink:data/orig',
    usr: 'directory',
    'usr/a-link': 'hardlink:data/orig',
  });
});

test('a same-size rewrite with the mtime put back is still caught', async () => {
  const { entries, byPath } = await runStep(async (root) => {
    const path = join(root, 'etc/conf');
    const mtime = statSync(path).mtime.toISOString();
    sh(`printf 'CONF\\n' > etc/conf; touch -d ${mtime} etc/conf`, root);
    assert.equal(statSync(path).mtime.toISOString(), mtime);
  });
  assert.deepEqual(summary(entries), { etc: 'directory', 'etc/conf': 'file' });
  assert.deepEqual(await contents(byPath.get('etc/conf')), Buffer.from('CONF\n'));
});

test('an xattr-only change is caught and the entry carries binary values', async () => {
  const { entries, byPath } = await runStep(
    'setfattr -n user.bin -v 0x000a3d0aff etc/conf; setfattr -n trusted.t -v 0x01 etc/sub; ' +
      'setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 usr/bin/tool',
  );
  assert.deepEqual(Object.keys(summary(entries)).sort(), ['etc', 'etc/conf', 'etc/sub', 'usr', 'usr/bin', 'usr/bin/tool']);
  assert.deepEqual(byPath.get('etc/conf')?.xattrs, { 'user.bin': Buffer.from('000a3d0aff', 'hex') });
  assert.deepEqual(byPath.get('etc/sub')?.xattrs, { 'trusted.t': Buffer.from([1]) });
  assert.deepEqual(byPath.get('usr/bin/tool')?.xattrs, { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') });
});

test('attributes a changed file already had are carried in its entry', async () => {
  const { byPath } = await runStep('echo new >> data/file');
  assert.deepEqual(byPath.get('data/file')?.xattrs, { 'user.kept': Buffer.from([0, 0xff]) });
  assert.equal(byPath.get('data/dir'), undefined);
});

test('a mixed step of every kind of change round-trips through a layer', async () => {
  const { entries } = await runStep(`
    rm -rf var/lib/d etc/sub/b
    rm -rf data/dir; mkdir data/dir; echo again > data/dir/c2
    rm etc/conf; mkdir -p etc/conf/inner; ln -s ../../usr/bin/tool etc/conf/inner/tool
    chown 4242:4343 usr/bin/tool; chmod 6711 usr/bin/tool
    echo h > usr/h; ln usr/h usr/h-again; ln data/orig etc/orig-link
    mkfifo var/fifo; mknod var/zero c 1 5; chmod 1733 var
    setfattr -n user.added -v 0x0102 usr/h
    dd if=/dev/urandom of=usr/blob bs=1024 count=3000 status=none
  `);
  assert.ok(entries.length > 10);
});

test('a 1 GiB sparse file is scanned and diffed by size, without reading it', async () => {
  const started = Date.now();
  const { root, byPath } = await runStep('truncate -s 1G data/big; touch -a -d 2001-01-01 data/big', { roundTrip: false });
  assert.equal(byPath.get('data/big')?.size, 1024 ** 3);
  // relatime would have moved an atime older than the mtime had anything read the file.
  assert.equal(statSync(join(root, 'data/big')).atime.getUTCFullYear(), 2001);
  assert.ok(Date.now() - started < 5000, 'a size-only scan takes well under reading a gigabyte');
});

