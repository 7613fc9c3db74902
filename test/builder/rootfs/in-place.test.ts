import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { inContainer, inPlaceProtectedPaths, mergeTree, refuseOwnedConflicts, removeUnprotected, replaceRootContents } from '../../../builder/rootfs/in-place.js';
import { mountPoints } from '../../../builder/host/mountinfo.js';
import { protectPaths } from '../../../builder/rootfs/protected-paths.js';
import type { LayerEntry } from '../../../layers/entry.js';
import { TsbuildError } from '../../../layers/errors.js';
import { repoRoot } from '../../support/repo-root.js';
import { listTree, writeLayers } from './layer-fixtures.js';

// Every tree here is a temp directory standing in for `/`; nothing outside it is touched.
const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-in-place-'));
after(() => rm(work, { recursive: true, force: true }));
let counter = 0;

/** A fresh fake root holding a workspace, a context with a symlink out, and free files around them. */
async function fakeRoot(): Promise<string> {
  const root = path.join(work, `root-${++counter}`);
  await mkdir(path.join(root, 'tmp/ws/layout'), { recursive: true });
  await writeFile(path.join(root, 'tmp/ws/layout/index.json'), '{}');
  await writeFile(path.join(root, 'tmp/junk'), 'junk');
  await mkdir(path.join(root, 'ctx/sub'), { recursive: true });
  await writeFile(path.join(root, 'ctx/sub/Dockerfile'), 'FROM scratch\n');
  await symlink('/etc', path.join(root, 'ctx/to-etc'));
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(root, 'etc/hosts'), 'mounted hosts\n');
  await writeFile(path.join(root, 'etc/passwd'), 'old\n');
  await mkdir(path.join(root, 'usr/local/bin'), { recursive: true });
  await writeFile(path.join(root, 'usr/local/bin/node'), 'node binary');
  await writeFile(path.join(root, 'usr/local/bin/other'), 'other');
  // Free symlinks that point into protected paths: removing them must not follow them.
  await symlink('/tmp/ws', path.join(root, 'ws-link'));
  await symlink('../ctx', path.join(root, 'usr/ctx-link'));
  await mkdir(path.join(root, 'var/lib'), { recursive: true });
  await writeFile(path.join(root, 'var/lib/state'), 'state');
  return root;
}

const protectedHere = protectPaths(['/tmp/ws', '/ctx', '/etc/hosts', '/usr/local/bin/node', '/out/image']);

async function names(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('removeUnprotected', () => {
  it('removes everything but protected paths and their parent directories, following no symlink', async () => {
    const root = await fakeRoot();
    const wsBefore = await listTree(path.join(root, 'tmp/ws'));
    const ctxBefore = await listTree(path.join(root, 'ctx'));
    await removeUnprotected(root, protectedHere);
    assert.deepEqual(await names(root), ['ctx', 'etc', 'tmp', 'usr']);
    assert.deepEqual(await names(path.join(root, 'tmp')), ['ws']);
    assert.deepEqual(await names(path.join(root, 'etc')), ['hosts']);
    assert.deepEqual(await names(path.join(root, 'usr')), ['local']);
    assert.deepEqual(await names(path.join(root, 'usr/local/bin')), ['node']);
    assert.deepEqual(await listTree(path.join(root, 'tmp/ws')), wsBefore);
    assert.deepEqual(await listTree(path.join(root, 'ctx')), ctxBefore);
    assert.equal(await readFile(path.join(root, 'etc/hosts'), 'utf8'), 'mounted hosts\n');
  });

  it('refuses a parent of a protected path that is not a directory, and removes nothing through it', async () => {
    const root = await fakeRoot();
    const elsewhere = path.join(work, `elsewhere-${counter}`);
    await rm(path.join(root, 'usr'), { recursive: true });
    await mkdir(path.join(elsewhere, 'local/bin'), { recursive: true });
    await writeFile(path.join(elsewhere, 'local/bin/node'), 'node binary');
    await writeFile(path.join(elsewhere, 'local/bin/other'), 'other');
    await symlink(elsewhere, path.join(root, 'usr'));
    const before = await listTree(elsewhere);
    await assert.rejects(removeUnprotected(root, protectedHere), (e: unknown) => e instanceof TsbuildError && e.code === 'IN_PLACE');
    assert.deepEqual(await listTree(elsewhere), before);
  });
});

describe('mergeTree', () => {
  it('moves free entries in, merges parents of protected paths and skips protected entries', async () => {
    const root = await fakeRoot();
    await removeUnprotected(root, protectedHere);
    const staged = path.join(work, `staged-${++counter}`);
    await mkdir(path.join(staged, 'tmp/ws'), { recursive: true });
    await writeFile(path.join(staged, 'tmp/ws/index.json'), 'from the image');
    await mkdir(path.join(staged, 'etc'), { mode: 0o750 });
    await writeFile(path.join(staged, 'etc/hosts'), 'image hosts');
    await writeFile(path.join(staged, 'etc/passwd'), 'new\n');
    await mkdir(path.join(staged, 'usr/local/bin'), { recursive: true });
    await writeFile(path.join(staged, 'usr/local/bin/tool'), 'tool');
    await mkdir(path.join(staged, 'out'));
    await symlink('/tmp/ws', path.join(staged, 'evil'));
    const wsBefore = await listTree(path.join(root, 'tmp/ws'));
    await mergeTree(staged, root, protectedHere);
    assert.deepEqual(await listTree(path.join(root, 'tmp/ws')), wsBefore);
    assert.equal(await readFile(path.join(root, 'etc/hosts'), 'utf8'), 'mounted hosts\n');
    assert.equal(await readFile(path.join(root, 'etc/passwd'), 'utf8'), 'new\n');
    assert.equal((await lstat(path.join(root, 'etc'))).mode & 0o7777, 0o750);
    assert.deepEqual(await names(path.join(root, 'usr/local/bin')), ['node', 'tool']);
    assert.equal(await readlink(path.join(root, 'evil')), '/tmp/ws');
    assert.ok((await lstat(path.join(root, 'out'))).isDirectory());
    // Moved, not copied: the staged free entries are gone, the protected ones stay behind.
    assert.deepEqual(await names(path.join(staged, 'etc')), ['hosts']);
  });

  it('refuses a non-directory where protected paths lie, leaving them intact', async () => {
    const root = await fakeRoot();
    await removeUnprotected(root, protectedHere);
    const staged = path.join(work, `staged-${++counter}`);
    await mkdir(staged);
    await symlink('/var/tmp', path.join(staged, 'tmp'));
    const wsBefore = await listTree(path.join(root, 'tmp/ws'));
    await assert.rejects(mergeTree(staged, root, protectedHere), (e: unknown) => e instanceof TsbuildError && e.code === 'IN_PLACE_CONFLICT');
    assert.deepEqual(await listTree(path.join(root, 'tmp/ws')), wsBefore);
  });

  it('replaces free entries of another type and merges free directories', async () => {
    const root = path.join(work, `root-${++counter}`);
    await mkdir(path.join(root, 'data/keep'), { recursive: true });
    await writeFile(path.join(root, 'data/keep/old'), 'old');
    await writeFile(path.join(root, 'file-to-dir'), 'file');
    const staged = path.join(work, `staged-${++counter}`);
    await mkdir(path.join(staged, 'data/keep'), { recursive: true });
    await writeFile(path.join(staged, 'data/keep/new'), 'new');
    await mkdir(path.join(staged, 'file-to-dir'));
    await mergeTree(staged, root, protectPaths([]));
    assert.deepEqual(await names(path.join(root, 'data/keep')), ['new', 'old']);
    assert.ok((await lstat(path.join(root, 'file-to-dir'))).isDirectory());
  });
});

const mtime = 1_600_000_000;
const dir = (p: string, mode = 0o755): LayerEntry => ({ path: p, type: 'directory', mode, uid: 0, gid: 0, mtime });
const file = (p: string, text: string): LayerEntry => ({
  path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size: Buffer.byteLength(text), open: () => Readable.from([Buffer.from(text)]),
});
const marker = (p: string): LayerEntry => ({ path: p, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime });

describe('replaceRootContents', () => {
  it('gives the root the layers’ tree while hostile entries cannot reach protected paths', async () => {
    const root = await fakeRoot();
    const wsBefore = await listTree(path.join(root, 'tmp/ws'));
    const ctxBefore = await listTree(path.join(root, 'ctx'));
    const layers = await writeLayers(
      path.join(work, `layout-${++counter}`),
      [dir('etc'), file('etc/passwd', 'root:x:0:0\n'), file('etc/hosts', 'image hosts\n'), dir('tmp', 0o1777), dir('tmp/ws'), file('tmp/ws/evil', 'evil'),
        { path: 'ctx-link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime, linkTarget: '/ctx' }, dir('usr'), dir('usr/bin'), file('usr/bin/sh', 'shell')],
      // A second layer that writes through its symlink, whites out protected paths and makes /tmp opaque.
      [file('ctx-link/planted', 'planted'), marker('ctx'), marker('etc/hosts'), dir('tmp', 0o1777), { path: 'tmp', type: 'opaque', mode: 0, uid: 0, gid: 0, mtime }],
    );
    await replaceRootContents(root, protectedHere, layers);
    assert.deepEqual(await listTree(path.join(root, 'tmp/ws')), wsBefore);
    assert.deepEqual(await listTree(path.join(root, 'ctx')), ctxBefore);
    assert.equal(await readFile(path.join(root, 'etc/hosts'), 'utf8'), 'mounted hosts\n');
    assert.equal(await readFile(path.join(root, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
    assert.equal(await readFile(path.join(root, 'usr/bin/sh'), 'utf8'), 'shell');
    assert.equal(await readlink(path.join(root, 'ctx-link')), '/ctx');
    assert.equal((await lstat(path.join(root, 'tmp'))).mode & 0o7777, 0o1777);
    assert.deepEqual(await names(root), ['ctx', 'ctx-link', 'etc', 'tmp', 'usr']);
    assert.deepEqual(await names(path.join(root, 'usr/local/bin')), ['node']);
  });
});

describe('refuseOwnedConflicts', () => {
  const owned = protectPaths(['/opt/tsbuild', '/usr/local/bin/node']);

  async function staged(build: (dir: string) => Promise<void>): Promise<string> {
    const dir = path.join(work, `owned-${++counter}`);
    await mkdir(dir);
    await build(dir);
    return dir;
  }

  it('accepts an image with nothing, or only empty directories, at the builder\'s paths', async () => {
    const root = path.join(work, `owned-root-${++counter}`);
    await mkdir(path.join(root, 'opt/tsbuild'), { recursive: true });
    const image = await staged(async (dir) => {
      await mkdir(path.join(dir, 'opt/tsbuild'), { recursive: true });
      await mkdir(path.join(dir, 'usr/local/bin'), { recursive: true });
      await writeFile(path.join(dir, 'usr/local/bin/other'), 'x');
    });
    await refuseOwnedConflicts(image, root, owned);
  });

  it('refuses a file at, an entry under, or a non-directory above a builder\'s path', async () => {
    const root = path.join(work, `owned-root-${++counter}`);
    await mkdir(root);
    const cases: Array<[(dir: string) => Promise<void>, string]> = [
      [async (dir) => { await mkdir(path.join(dir, 'usr/local/bin'), { recursive: true }); await writeFile(path.join(dir, 'usr/local/bin/node'), 'node'); }, '/usr/local/bin/node'],
      [async (dir) => { await mkdir(path.join(dir, 'opt/tsbuild/dist'), { recursive: true }); }, '/opt/tsbuild/dist'],
      [async (dir) => { await symlink('/var/tmp', path.join(dir, 'opt')); }, '/opt'],
    ];
    for (const [build, where] of cases) {
      const image = await staged(build);
      await assert.rejects(refuseOwnedConflicts(image, root, owned), (e: unknown) =>
        e instanceof TsbuildError && e.code === 'IN_PLACE_CONFLICT' && e.message.startsWith(`cannot build in place: the image has ${where}, where this build keeps its own files`));
    }
  });
});

describe('inPlaceProtectedPaths', () => {
  it('keeps this node binary, this installation, the kernel file systems and every mount but /', async () => {
    const paths = await inPlaceProtectedPaths([path.join(work, 'missing/output')]);
    for (const wanted of [await realpath(process.execPath), await realpath(repoRoot()), '/proc', '/sys', '/dev', path.join(await realpath(work), 'missing/output')]) {
      assert.ok(paths.includes(wanted), wanted);
    }
    for (const point of (await mountPoints()).filter((p) => p !== '/')) assert.ok(paths.includes(await realpath(point).catch(() => point)), point);
    assert.ok(!paths.includes('/'));
    assert.doesNotThrow(() => protectPaths(paths));
  });
});

describe('inContainer', () => {
  const none = {};

  it('is false without any sign of a container', async () => {
    const root = path.join(work, `probe-${++counter}`);
    await mkdir(path.join(root, 'proc/1'), { recursive: true });
    await writeFile(path.join(root, 'proc/1/cgroup'), '12:pids:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n');
    assert.equal(await inContainer({ root, env: none }), false);
    assert.equal(await inContainer({ root: path.join(work, 'no-such-root'), env: none }), false);
  });

  it('sees the marker files', async () => {
    for (const marker of ['.dockerenv', 'run/.containerenv']) {
      const root = path.join(work, `probe-${++counter}`);
      await mkdir(path.dirname(path.join(root, marker)), { recursive: true });
      await writeFile(path.join(root, marker), '');
      assert.equal(await inContainer({ root, env: none }), true, marker);
    }
  });

  it('sees the container and Kubernetes variables', async () => {
    const root = path.join(work, 'no-such-root');
    assert.equal(await inContainer({ root, env: { container: 'podman' } }), true);
    assert.equal(await inContainer({ root, env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' } }), true);
    assert.equal(await inContainer({ root, env: { container: '' } }), false);
  });

  it('sees container managers in the cgroup of pid 1', async () => {
    const lines = [
      '12:memory:/docker/3f2a9c0d1e\n',
      '11:cpu:/kubepods/besteffort/pod1234/abcd\n',
      '0::/system.slice/docker-0123abcd.scope\n',
      '5:pids:/machine.slice/libpod-0123.scope\n',
    ];
    for (const text of lines) {
      const root = path.join(work, `probe-${++counter}`);
      await mkdir(path.join(root, 'proc/1'), { recursive: true });
      await writeFile(path.join(root, 'proc/1/cgroup'), text);
      assert.equal(await inContainer({ root, env: none }), true, text);
    }
  });
});
