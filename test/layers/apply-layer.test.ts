import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createGunzip, gzipSync } from 'node:zlib';
import { extract as tarExtract, pack, type Header } from 'tar-stream';
import { applyLayer, type ApplyOptions, type ApplyStats } from '../../layers/apply-layer.js';
import { TsbuildError } from '../../layers/errors.js';
import { repoRoot } from '../support/repo-root.js';
import { requires } from '../support/requirement.js';

const MTIME = new Date('2020-01-02T03:04:05Z');
const isRoot = process.getuid?.() === 0;

/** One tar entry to build; `content` is a regular file's data. */
type Item = Partial<Omit<Header, 'pax'>> & { name: string; content?: string | Buffer; pax?: Record<string, string> };

async function tarBytes(items: Item[]): Promise<Buffer> {
  const packer = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  for (const { content, ...header } of items) packer.entry({ mtime: MTIME, ...header }, content ?? '');
  packer.finalize();
  await collected;
  return Buffer.concat(chunks);
}

async function apply(root: string, items: Item[], options?: ApplyOptions): Promise<ApplyStats> {
  return applyLayer(root, Readable.from([await tarBytes(items)]), options);
}

function failsWith(code: string): (err: unknown) => boolean {
  return (err) => err instanceof TsbuildError && err.code === code;
}

/**
 * A temp directory holding the rootfs (`root`) next to sentinel files (`outside/...`, `neighbour`)
 * that hostile layers aim at: a broken extractor would hit these and never the real host paths.
 */
interface Sandbox {
  dir: string;
  root: string;
  outside: string;
  /** `dir` without its leading slash: where an absolute path to `dir` lands inside the root. */
  dirInRoot: string;
}

const sandboxes: string[] = [];

async function makeSandbox(): Promise<Sandbox> {
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'tsbuild-apply-')));
  sandboxes.push(dir);
  const root = path.join(dir, 'root');
  const outside = path.join(dir, 'outside');
  await mkdir(root);
  await mkdir(path.join(outside, 'etc'), { recursive: true });
  await writeFile(path.join(outside, 'victim'), 'host data');
  await writeFile(path.join(outside, 'etc', 'passwd'), 'root:x:0:0');
  await writeFile(path.join(dir, 'neighbour'), 'n');
  return { dir, root, outside, dirInRoot: path.join(root, dir.slice(1)) };
}

after(async () => {
  for (const dir of sandboxes) await rm(dir, { recursive: true, force: true });
});

/** Everything about every path of the sandbox except the rootfs, to compare before and after. */
async function snapshotOutsideRoot(box: Sandbox): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  const visit = async (p: string): Promise<void> => {
    if (p === box.root) return;
    const st = await lstat(p);
    let detail = '';
    if (st.isSymbolicLink()) detail = await readlink(p);
    else if (st.isFile()) detail = (await readFile(p)).toString('base64');
    seen.set(p, [st.mode, st.uid, st.gid, st.size, st.nlink, st.ino, st.mtimeMs, st.ctimeMs, detail].join(' '));
    if (st.isDirectory()) for (const name of (await readdir(p)).sort()) await visit(path.join(p, name));
  };
  await visit(box.dir);
  return seen;
}

/** Runs `work` and asserts that nothing of the sandbox outside the rootfs changed. */
async function assertContained(box: Sandbox, work: () => Promise<unknown>): Promise<void> {
  const before = await snapshotOutsideRoot(box);
  await work();
  assert.deepEqual(await snapshotOutsideRoot(box), before);
}

const text = (p: string): Promise<string> => readFile(p, 'utf8');
const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);

describe('applyLayer: hostile layers stay inside the root', () => {
  test('`..` paths are resolved inside the root', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      apply(box.root, [
        { name: '../outside/pwned', content: 'one' },
        { name: 'a/../../outside/pwned2', content: 'two' },
        { name: `../../../../../../../..${box.dir}/outside/pwned3`, content: 'three' },
        { name: '../outside/newdir/', type: 'directory' },
      ]),
    );
    assert.equal(await text(path.join(box.root, 'outside/pwned')), 'one');
    assert.equal(await text(path.join(box.root, 'outside/pwned2')), 'two');
    assert.equal(await text(path.join(box.dirInRoot, 'outside/pwned3')), 'three');
    assert.ok((await lstat(path.join(box.root, 'outside/newdir'))).isDirectory());
  });

  test('absolute paths are taken relative to the root', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      apply(box.root, [
        { name: `${box.dir}/outside/victim`, content: 'overwritten' },
        { name: `${box.dir}/neighbour`, type: 'symlink', linkname: '/etc/shadow' },
      ]),
    );
    assert.equal(await text(path.join(box.dirInRoot, 'outside/victim')), 'overwritten');
    assert.equal(await readlink(path.join(box.dirInRoot, 'neighbour')), '/etc/shadow');
  });

  test('writing through a symlink of the same layer lands inside the root', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'evil', type: 'symlink', linkname: `${box.dir}/outside` },
        { name: 'evil/pwned', content: 'through' },
        { name: 'evil/sub/deeper', content: 'deep' },
        { name: 'rel', type: 'symlink', linkname: '../outside' },
        { name: 'rel/pwned', content: 'relative' },
      ]),
    );
    assert.equal(await readlink(path.join(box.root, 'evil')), `${box.dir}/outside`);
    assert.equal(await text(path.join(box.dirInRoot, 'outside/pwned')), 'through');
    assert.equal(await text(path.join(box.dirInRoot, 'outside/sub/deeper')), 'deep');
    assert.equal(await text(path.join(box.root, 'outside/pwned')), 'relative');
  });

  test('writing through a symlink of a lower layer lands inside the root', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'evil', type: 'symlink', linkname: `${box.dir}/outside` },
      { name: 'victimlink', type: 'symlink', linkname: `${box.dir}/outside/victim` },
    ]);
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'evil/pwned', content: 'through' },
        { name: 'evil/etc/passwd', content: 'pwned::0:0' },
        { name: 'victimlink', content: 'replaced' },
      ]),
    );
    assert.equal(await text(path.join(box.dirInRoot, 'outside/pwned')), 'through');
    assert.equal(await text(path.join(box.dirInRoot, 'outside/etc/passwd')), 'pwned::0:0');
    // The final component is never followed: the symlink itself was replaced by the file.
    const replaced = await lstat(path.join(box.root, 'victimlink'));
    assert.ok(replaced.isFile());
    assert.equal(await text(path.join(box.root, 'victimlink')), 'replaced');
  });

  test('a directory the layer already wrote into, then replaced by a symlink, is resolved again', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'd/', type: 'directory' },
        { name: 'd/first', content: 'one' },
        { name: 'd', type: 'symlink', linkname: `${box.dir}/outside` },
        { name: 'd/second', content: 'two' },
        { name: 's', type: 'symlink', linkname: '../outside' },
        { name: 'h/', type: 'directory' },
        { name: 'h/first', content: 'three' },
        // A hardlink to a symlink is a symlink too.
        { name: 'h', type: 'link', linkname: 's' },
        { name: 'h/second', content: 'four' },
      ]),
    );
    assert.equal(await text(path.join(box.dirInRoot, 'outside/second')), 'two');
    assert.equal(await text(path.join(box.root, 'outside/second')), 'four');
    assert.equal(await exists(path.join(box.root, 'd/first')), false);
  });

  test('a symlinked directory the layer wrote through, then whited out, is made a real directory', async () => {
    const box = await makeSandbox();
    await apply(box.root, [{ name: 'w', type: 'symlink', linkname: 'elsewhere' }]);
    await apply(box.root, [
      { name: 'w/first', content: 'one' },
      { name: '.wh.w' },
      { name: 'w/second', content: 'two' },
    ]);
    assert.equal(await text(path.join(box.root, 'elsewhere/first')), 'one');
    assert.ok((await lstat(path.join(box.root, 'w'))).isDirectory());
    assert.equal(await text(path.join(box.root, 'w/second')), 'two');
  });

  test('symlinked parents pointing to / or above the root are clamped to the root', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'slash', type: 'symlink', linkname: '/' },
        { name: `slash${box.dir}/outside/pwned`, content: 'one' },
        { name: 'up', type: 'symlink', linkname: '../../../../../../..' },
        { name: `up${box.dir}/outside/pwned2`, content: 'two' },
        { name: 'hop1', type: 'symlink', linkname: 'hop2' },
        { name: 'hop2', type: 'symlink', linkname: '../outside' },
        { name: 'hop1/pwned3', content: 'three' },
      ]),
    );
    assert.equal(await text(path.join(box.dirInRoot, 'outside/pwned')), 'one');
    assert.equal(await text(path.join(box.dirInRoot, 'outside/pwned2')), 'two');
    assert.equal(await text(path.join(box.root, 'outside/pwned3')), 'three');
  });

  test('hardlinks whose target climbs out of the root are refused', async () => {
    const box = await makeSandbox();
    for (const linkname of ['../outside/victim', 'a/../../outside/victim', `../../../../../..${box.dir}/outside/victim`]) {
      await assertContained(box, () =>
        assert.rejects(apply(box.root, [{ name: 'grab', type: 'link', linkname }]), failsWith('UNSAFE_LAYER')),
      );
      assert.equal(await exists(path.join(box.root, 'grab')), false);
    }
    assert.equal((await stat(path.join(box.outside, 'victim'))).nlink, 1);
  });

  test('hardlink targets are resolved inside the root, through symlinks', async () => {
    const box = await makeSandbox();
    // An absolute target means the root's copy, which does not exist yet.
    await assertContained(box, () =>
      assert.rejects(
        apply(box.root, [{ name: 'grab', type: 'link', linkname: `${box.dir}/outside/victim` }]),
        failsWith('INVALID_LAYER'),
      ),
    );
    await assertContained(box, () =>
      apply(box.root, [
        { name: `${box.dir}/outside/victim`, content: 'inside copy' },
        { name: 'evil', type: 'symlink', linkname: `${box.dir}/outside` },
        { name: 'grab', type: 'link', linkname: 'evil/victim' },
        { name: 'grab-abs', type: 'link', linkname: `${box.dir}/outside/victim` },
        { name: 'linked-symlink', type: 'link', linkname: 'evil' },
      ]),
    );
    const inside = await stat(path.join(box.dirInRoot, 'outside/victim'));
    assert.equal((await stat(path.join(box.root, 'grab'))).ino, inside.ino);
    assert.equal((await stat(path.join(box.root, 'grab-abs'))).ino, inside.ino);
    assert.equal(inside.nlink, 3);
    // A hardlink to a symlink links the symlink itself, not what it points to.
    const linked = await lstat(path.join(box.root, 'linked-symlink'));
    assert.ok(linked.isSymbolicLink());
    assert.equal(linked.ino, (await lstat(path.join(box.root, 'evil'))).ino);
    assert.equal((await stat(path.join(box.outside, 'victim'))).nlink, 1);
  });

  test('whiteouts only delete inside the root', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'outside/victim', content: 'root copy' },
      { name: `${box.dir}/outside/victim`, content: 'deep copy' },
      { name: 'evil', type: 'symlink', linkname: `${box.dir}/outside` },
      { name: 'keep', content: 'k' },
    ]);
    await assertContained(box, () =>
      apply(box.root, [
        { name: '../outside/.wh.victim' },
        { name: 'evil/.wh.victim' },
        { name: '../.wh.neighbour' },
      ]),
    );
    assert.equal(await exists(path.join(box.root, 'outside/victim')), false);
    assert.equal(await exists(path.join(box.dirInRoot, 'outside/victim')), false);
    assert.equal(await text(path.join(box.root, 'keep')), 'k');
    assert.ok((await lstat(path.join(box.root, 'evil'))).isSymbolicLink());

    // Whiting out the symlink removes the link, not its target.
    await assertContained(box, () => apply(box.root, [{ name: '.wh.evil' }]));
    assert.equal(await exists(path.join(box.root, 'evil')), false);
    assert.ok((await stat(path.join(box.dirInRoot, 'outside'))).isDirectory());

    for (const name of ['outside/.wh...', '.wh..', 'a/b/.wh..']) {
      await assertContained(box, () => assert.rejects(apply(box.root, [{ name }]), failsWith('UNSAFE_LAYER')));
    }
    assert.equal(await text(path.join(box.root, 'keep')), 'k');
  });

  test('whiteouts and opaque markers under a symlink to / are clamped to the root', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: `${box.dir}/outside/victim`, content: 'root copy' },
      { name: `${box.dir}/outside/etc/passwd`, content: 'root copy' },
      { name: 'slash', type: 'symlink', linkname: '/' },
    ]);
    await assertContained(box, () =>
      apply(box.root, [
        { name: `slash${box.dir}/outside/.wh.victim` },
        { name: `slash${box.dir}/outside/etc/.wh..wh..opq` },
      ]),
    );
    assert.equal(await exists(path.join(box.dirInRoot, 'outside/victim')), false);
    assert.deepEqual(await readdir(path.join(box.dirInRoot, 'outside/etc')), []);
    assert.ok((await lstat(path.join(box.root, 'slash'))).isSymbolicLink());
  });

  test('an opaque marker resolving to the root empties only the root', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'lower', content: 'l' },
      { name: 'up', type: 'symlink', linkname: '..' },
    ]);
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'upper', content: 'u' },
        { name: 'up/.wh..wh..opq' },
      ]),
    );
    assert.deepEqual(await readdir(box.root), ['upper']);
  });

  test('entries resolving to the root itself never replace it', async () => {
    const box = await makeSandbox();
    const rootBefore = await stat(box.root);
    await assertContained(box, () =>
      apply(box.root, [
        { name: './', type: 'directory', mode: 0o777, uid: 4242 },
        { name: 'a/../..', type: 'directory', mode: 0o700 },
      ]),
    );
    const rootAfter = await stat(box.root);
    assert.equal(rootAfter.mode, rootBefore.mode);
    assert.equal(rootAfter.uid, rootBefore.uid);
    for (const entry of [
      { name: '..', content: 'file over the root' },
      { name: 'a/..', type: 'symlink' as const, linkname: '/' },
    ]) {
      await assertContained(box, () => assert.rejects(apply(box.root, [entry]), failsWith('UNSAFE_LAYER')));
    }
    assert.ok((await lstat(box.root)).isDirectory());
  });

  test('symlink loops are refused', async () => {
    const box = await makeSandbox();
    await assertContained(box, () =>
      assert.rejects(
        apply(box.root, [
          { name: 'loop1', type: 'symlink', linkname: 'loop2' },
          { name: 'loop2', type: 'symlink', linkname: '/loop1' },
          { name: 'loop1/x', content: 'x' },
        ]),
        failsWith('UNSAFE_LAYER'),
      ),
    );
  });
});

describe('applyLayer: layer semantics', () => {
  test('whiteouts remove files and whole directories, and are not created themselves', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'file', content: 'f' },
      { name: 'dir/', type: 'directory' },
      { name: 'dir/a', content: 'a' },
      { name: 'dir/sub/b', content: 'b' },
      { name: 'dir/link', type: 'symlink', linkname: `${box.dir}/outside` },
      { name: 'other', content: 'o' },
    ]);
    let stats: ApplyStats | undefined;
    await assertContained(box, async () => {
      stats = await apply(box.root, [{ name: '.wh.file' }, { name: '.wh.dir' }, { name: '.wh.missing' }]);
    });
    assert.deepEqual(await readdir(box.root), ['other']);
    assert.equal(stats?.applied.whiteout, 3);
    assert.equal(stats?.entries, 3);
  });

  for (const order of ['first', 'last'] as const) {
    test(`an opaque directory hides lower content but keeps its own layer's (marker ${order})`, async () => {
      const box = await makeSandbox();
      await apply(box.root, [
        { name: 'd/old', content: 'old' },
        { name: 'd/sub/old2', content: 'old2' },
        { name: 'd/gone/x', content: 'x' },
        { name: 'other/x', content: 'x' },
      ]);
      const marker: Item = { name: 'd/.wh..wh..opq' };
      const upper: Item[] = [
        { name: 'd/', type: 'directory' },
        { name: 'd/new', content: 'new' },
        { name: 'd/sub/', type: 'directory' },
        { name: 'd/sub/new2', content: 'new2' },
      ];
      const stats = await apply(box.root, order === 'first' ? [upper[0], marker, ...upper.slice(1)] : [...upper, marker]);
      assert.deepEqual((await readdir(path.join(box.root, 'd'))).sort(), ['new', 'sub']);
      assert.deepEqual(await readdir(path.join(box.root, 'd/sub')), ['new2']);
      assert.equal(await text(path.join(box.root, 'other/x')), 'x');
      assert.equal(stats.applied.opaque, 1);
    });
  }

  test('a whiteout does not remove what its own layer adds, in either order', async () => {
    const box = await makeSandbox();
    await apply(box.root, [{ name: 'x', content: 'lower' }, { name: 'y/lower', content: 'l' }]);
    await apply(box.root, [
      { name: 'x', content: 'upper' },
      { name: '.wh.x' },
      { name: '.wh.y' },
      { name: 'y/upper', content: 'u' },
    ]);
    assert.equal(await text(path.join(box.root, 'x')), 'upper');
    assert.deepEqual(await readdir(path.join(box.root, 'y')), ['upper']);
  });

  test('an entry of another type replaces what was there', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'f2d', content: 'file' },
      { name: 'd2f/child', content: 'c' },
      { name: 'f2s', content: 'file' },
      { name: 's2d', type: 'symlink', linkname: `${box.dir}/outside` },
      { name: 's2f', type: 'symlink', linkname: `${box.dir}/outside/victim` },
    ]);
    await assertContained(box, () =>
      apply(box.root, [
        { name: 'f2d/', type: 'directory' },
        { name: 'f2d/inner', content: 'inner' },
        { name: 'd2f', content: 'now a file' },
        { name: 'f2s', type: 'symlink', linkname: 'd2f' },
        { name: 's2d/', type: 'directory' },
        { name: 's2f', content: 'now a file' },
      ]),
    );
    assert.equal(await text(path.join(box.root, 'f2d/inner')), 'inner');
    assert.equal(await text(path.join(box.root, 'd2f')), 'now a file');
    assert.equal(await readlink(path.join(box.root, 'f2s')), 'd2f');
    const s2d = await lstat(path.join(box.root, 's2d'));
    assert.ok(s2d.isDirectory());
    assert.deepEqual(await readdir(path.join(box.root, 's2d')), []);
    assert.ok((await lstat(path.join(box.root, 's2f'))).isFile());
  });

  test('a directory entry over a directory keeps its contents and updates its metadata', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'd/', type: 'directory', mode: 0o755 },
      { name: 'd/keep', content: 'k' },
    ]);
    const mtime = new Date('2011-11-11T11:11:11Z');
    await apply(box.root, [{ name: 'd/', type: 'directory', mode: 0o750, uid: 1234, gid: 5678, mtime }]);
    const st = await stat(path.join(box.root, 'd'));
    assert.equal(st.mode & 0o7777, 0o750);
    assert.equal(st.uid, isRoot ? 1234 : process.getuid?.());
    assert.equal(st.mtimeMs, mtime.getTime());
    assert.equal(await text(path.join(box.root, 'd/keep')), 'k');
  });

  test('a file in a directory that is a file is refused', async () => {
    const box = await makeSandbox();
    await apply(box.root, [{ name: 'plain', content: 'p' }]);
    await assert.rejects(apply(box.root, [{ name: 'plain/child', content: 'c' }]), failsWith('INVALID_LAYER'));
    assert.equal(await text(path.join(box.root, 'plain')), 'p');
  });

  test('hardlinks share the inode, and overwriting one later leaves the others', async () => {
    const box = await makeSandbox();
    const stats = await apply(box.root, [
      { name: 'a', content: 'one' },
      { name: 'b', type: 'link', linkname: 'a' },
      { name: 'sub/c', type: 'link', linkname: './a' },
    ]);
    assert.equal(stats.applied.hardlink, 2);
    const a = await stat(path.join(box.root, 'a'));
    assert.equal(a.nlink, 3);
    assert.equal((await stat(path.join(box.root, 'b'))).ino, a.ino);
    assert.equal((await stat(path.join(box.root, 'sub/c'))).ino, a.ino);

    await apply(box.root, [
      { name: 'a', content: 'two' },
      { name: 'd', type: 'link', linkname: '/b' },
    ]);
    assert.equal(await text(path.join(box.root, 'a')), 'two');
    assert.equal(await text(path.join(box.root, 'b')), 'one');
    assert.equal((await stat(path.join(box.root, 'd'))).ino, a.ino);
    await assert.rejects(apply(box.root, [{ name: 'e', type: 'link', linkname: 'missing' }]), failsWith('INVALID_LAYER'));
    await assert.rejects(apply(box.root, [{ name: 'e', type: 'link', linkname: 'sub' }]), failsWith('INVALID_LAYER'));
  });

  test('setuid, setgid and sticky bits survive the change of owner', async () => {
    const box = await makeSandbox();
    await apply(box.root, [
      { name: 'suid', content: '#!/bin/sh', mode: 0o4755, uid: 1000, gid: 1000 },
      { name: 'sgid', content: '#!/bin/sh', mode: 0o2711, uid: 0, gid: 50 },
      { name: 'all', content: '', mode: 0o7777, uid: 3, gid: 3 },
      { name: 'tmp/', type: 'directory', mode: 0o1777, uid: 0, gid: 0 },
      { name: 'tmp/file', content: 'x', mode: 0o600 },
      { name: 'shared/', type: 'directory', mode: 0o2775, uid: 10, gid: 20 },
    ]);
    const modeOf = async (name: string): Promise<number> => (await stat(path.join(box.root, name))).mode & 0o7777;
    assert.equal(await modeOf('suid'), 0o4755);
    assert.equal(await modeOf('sgid'), 0o2711);
    assert.equal(await modeOf('all'), 0o7777);
    assert.equal(await modeOf('tmp'), 0o1777);
    assert.equal(await modeOf('tmp/file'), 0o600);
    assert.equal(await modeOf('shared'), 0o2775);
    if (isRoot) assert.equal((await stat(path.join(box.root, 'suid'))).uid, 1000);
  });

  test('FIFOs are created with their mode, owner and mtime', async () => {
    const box = await makeSandbox();
    const stats = await apply(box.root, [{ name: 'run/pipe', type: 'fifo', mode: 0o640, uid: 42, gid: 43 }]);
    const st = await lstat(path.join(box.root, 'run/pipe'));
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o7777, 0o640);
    if (isRoot) assert.deepEqual([st.uid, st.gid], [42, 43]);
    assert.equal(st.mtimeMs, MTIME.getTime());
    assert.equal(stats.applied.fifo, 1);
  });

  test('device nodes are created when running as root', { skip: requires(!isRoot && 'needs root') }, async () => {
    const box = await makeSandbox();
    const stats = await apply(box.root, [
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
    ]);
    const chr = await lstat(path.join(box.root, 'dev/null'));
    assert.ok(chr.isCharacterDevice());
    assert.deepEqual([(chr.rdev >> 8) & 0xfff, chr.rdev & 0xff], [1, 3]);
    assert.equal(chr.mode & 0o7777, 0o666);
    const blk = await lstat(path.join(box.root, 'dev/loop0'));
    assert.ok(blk.isBlockDevice());
    assert.deepEqual([(blk.rdev >> 8) & 0xfff, blk.rdev & 0xff], [7, 0]);
    assert.equal(blk.gid, 6);
    assert.equal(stats.applied.char, 1);
    assert.equal(stats.applied.block, 1);
    assert.deepEqual(stats.skippedDevices, []);
  });

  test('ownership follows the tar as root, and the process without sameOwner', { skip: requires(!isRoot && 'needs root') }, async () => {
    const box = await makeSandbox();
    const items: Item[] = [
      { name: 'owned/', type: 'directory', uid: 100, gid: 101 },
      { name: 'owned/file', content: 'x', uid: 4242, gid: 4343 },
      { name: 'owned/link', type: 'symlink', linkname: 'file', uid: 7, gid: 8 },
      { name: 'big', content: 'x', pax: { uid: '3000000', gid: '3000001' } },
    ];
    await apply(box.root, items);
    const owner = async (name: string): Promise<number[]> => {
      const st = await lstat(path.join(box.root, name));
      return [st.uid, st.gid];
    };
    assert.deepEqual(await owner('owned'), [100, 101]);
    assert.deepEqual(await owner('owned/file'), [4242, 4343]);
    assert.deepEqual(await owner('owned/link'), [7, 8]);
    assert.deepEqual(await owner('big'), [3000000, 3000001]);

    const other = await makeSandbox();
    await apply(other.root, items, { sameOwner: false });
    for (const name of ['owned', 'owned/file', 'owned/link', 'big']) {
      const st = await lstat(path.join(other.root, name));
      assert.deepEqual([st.uid, st.gid], [0, 0], name);
    }
  });

  test('mtimes are set, directories last and symlinks without following them', async () => {
    const box = await makeSandbox();
    const dirTime = new Date('2001-02-03T04:05:06Z');
    const fileTime = new Date('2002-03-04T05:06:07Z');
    const linkTime = new Date('2003-04-05T06:07:08Z');
    await apply(box.root, [
      { name: 'd/', type: 'directory', mtime: dirTime },
      { name: 'd/file', content: 'x', mtime: fileTime },
      { name: 'd/link', type: 'symlink', linkname: 'file', mtime: linkTime },
      { name: 'd/nested/', type: 'directory', mtime: dirTime },
      { name: 'd/nested/late', content: 'y', mtime: fileTime },
      { name: 'precise', content: 'p', pax: { mtime: '1234567890.5' } },
    ]);
    assert.equal((await stat(path.join(box.root, 'd'))).mtimeMs, dirTime.getTime());
    assert.equal((await stat(path.join(box.root, 'd/nested'))).mtimeMs, dirTime.getTime());
    assert.equal((await stat(path.join(box.root, 'd/file'))).mtimeMs, fileTime.getTime());
    assert.equal((await lstat(path.join(box.root, 'd/link'))).mtimeMs, linkTime.getTime());
    assert.equal((await stat(path.join(box.root, 'precise'))).mtimeMs, 1234567890500);
  });

  test('PAX xattrs are returned in the stats by path, not dropped', async () => {
    const box = await makeSandbox();
    const stats = await apply(box.root, [
      { name: 'real/', type: 'directory' },
      { name: 'alias', type: 'symlink', linkname: 'real' },
      {
        name: 'alias/tool',
        content: 'bin',
        pax: { 'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.trusted.x': 'y' },
      },
      { name: 'plain', content: 'p' },
    ]);
    assert.deepEqual([...stats.xattrs.keys()], ['real/tool']);
    assert.deepEqual(stats.xattrs.get('real/tool'), {
      'user.comment': Buffer.from('hello'),
      'trusted.x': Buffer.from('y'),
    });
  });

  test('stats count entries by kind and the bytes written', async () => {
    const box = await makeSandbox();
    const stats = await apply(box.root, [
      { name: 'd/', type: 'directory' },
      { name: 'd/one', content: 'abc' },
      { name: 'd/two', content: Buffer.alloc(70000, 1) },
      { name: 'd/s', type: 'symlink', linkname: 'one' },
      { name: 'd/h', type: 'link', linkname: 'd/one' },
      { name: '.wh..wh.plnk/123', content: 'aufs' },
    ]);
    assert.equal(stats.entries, 6);
    assert.equal(stats.bytes, 70003);
    assert.deepEqual(stats.applied, {
      file: 2, directory: 1, symlink: 1, hardlink: 1, fifo: 0, char: 0, block: 0, whiteout: 0, opaque: 0,
    });
    assert.equal(await exists(path.join(box.root, '.wh..wh.plnk')), false);
    assert.equal((await readFile(path.join(box.root, 'd/two'))).length, 70000);
  });

  test('a gzip layer decompressed by the caller applies the same', async () => {
    const box = await makeSandbox();
    const gz = gzipSync(await tarBytes([{ name: 'etc/os-release', content: 'ID=test\n' }]));
    await applyLayer(box.root, Readable.from([gz]).pipe(createGunzip()));
    assert.equal(await text(path.join(box.root, 'etc/os-release')), 'ID=test\n');
  });

  test('empty, corrupt, truncated and failing tar streams', async () => {
    const box = await makeSandbox();
    const empty = await applyLayer(box.root, Readable.from([Buffer.alloc(10240)]));
    assert.equal(empty.entries, 0);

    const good = await tarBytes([{ name: 'big', content: Buffer.alloc(5000, 7) }]);
    const corrupt = Buffer.from(good);
    corrupt[0] ^= 0xff;
    await assert.rejects(applyLayer(box.root, Readable.from([corrupt])), failsWith('INVALID_LAYER'));
    await assert.rejects(applyLayer(box.root, Readable.from([good.subarray(0, 2048)])), failsWith('INVALID_LAYER'));

    const boom = new Error('network went away');
    const failing = new Readable({
      read() {
        this.push(good.subarray(0, 1024));
        this.destroy(boom);
      },
    });
    await assert.rejects(applyLayer(box.root, failing), (err) => err === boom);
  });

  test('without root, device nodes are skipped and counted', { skip: requires(!isRoot && 'needs root to switch user') }, async () => {
    const box = await makeSandbox();
    const nobody = 65534;
    await chmod(box.dir, 0o755);
    await chown(box.root, nobody, nobody);
    const tarPath = path.join(box.dir, 'layer.tar');
    await writeFile(
      tarPath,
      await tarBytes([
        { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'ro/', type: 'directory', mode: 0o555 },
        { name: 'ro/file', content: 'x', uid: 1234, mode: 0o4755 },
      ]),
    );
    const moduleUrl = pathToFileURL(path.join(repoRoot(), 'dist/layers/apply-layer.js')).href;
    const script = `
      import { createReadStream } from 'node:fs';
      const [moduleUrl, root, tarPath] = process.argv.slice(1);
      process.setgid(${nobody});
      process.setuid(${nobody});
      const { applyLayer } = await import(moduleUrl);
      const stats = await applyLayer(root, createReadStream(tarPath));
      process.stdout.write(JSON.stringify({ skipped: stats.skippedDevices, applied: stats.applied }));
    `;
    const { stdout } = await promisify(execFile)(process.execPath, [
      '--input-type=module', '-e', script, moduleUrl, box.root, tarPath,
    ]);
    const result = JSON.parse(stdout) as { skipped: string[]; applied: ApplyStats['applied'] };
    assert.deepEqual(result.skipped, ['dev/null']);
    assert.equal(result.applied.char, 0);
    assert.equal(result.applied.file, 1);
    assert.equal(await exists(path.join(box.root, 'dev/null')), false);
    const file = await stat(path.join(box.root, 'ro/file'));
    assert.deepEqual([file.uid, file.mode & 0o7777], [nobody, 0o4755]);
    assert.equal((await stat(path.join(box.root, 'ro'))).mode & 0o7777, 0o555);
  });
});

describe('applyLayer: go-containerregistry mutate fixtures', () => {
  const fixtures = path.join(repoRoot(), 'test/fixtures/ggcr-mutate');
  let box: Sandbox;
  before(async () => {
    box = await makeSandbox();
  });

  /** Applies the layers of a `docker save` tarball in manifest order to a fresh directory. */
  async function flatten(name: string): Promise<string> {
    const files = new Map<string, Buffer>();
    const reader = tarExtract();
    reader.end(await readFile(path.join(fixtures, name)));
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      files.set(entry.header.name, Buffer.concat(chunks));
    }
    const manifest = JSON.parse(String(files.get('manifest.json'))) as { Layers: string[] }[];
    const root = path.join(box.dir, name);
    await mkdir(root);
    for (const layer of manifest[0].Layers) {
      const bytes = files.get(layer);
      assert.ok(bytes, `${layer} is in ${name}`);
      const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
      await applyLayer(root, gzipped ? Readable.from([bytes]).pipe(createGunzip()) : Readable.from([bytes]));
    }
    return root;
  }

  test('whiteout_image: foo.txt is whited out, bar.txt stays', async () => {
    const root = await flatten('whiteout_image.tar');
    assert.deepEqual((await readdir(root)).sort(), ['bar.txt']);
    assert.equal(await text(path.join(root, 'bar.txt')), 'bar\n');
  });

  test('overwritten_file: foo.txt has the overwritten content', async () => {
    const root = await flatten('overwritten_file.tar');
    assert.deepEqual((await readdir(root)).sort(), ['bar.txt', 'foo.txt']);
    assert.equal(await readlink(path.join(root, 'foo.txt')), 'bar.txt');
    assert.equal(await text(path.join(root, 'foo.txt')), 'bar\n');
  });

  test('whiteout_dir: a whited-out directory comes back with only the later layer\'s file', async () => {
    const root = await flatten('whiteout_dir.tar');
    assert.deepEqual((await readdir(root)).sort(), ['a', 'b']);
    assert.deepEqual(await readdir(path.join(root, 'a')), ['baz']);
    assert.deepEqual(await readdir(path.join(root, 'b')), ['bar']);
  });
});
