import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { chainId } from '../../../layers/chain-id.js';
import { ownedName } from '../../../builder/cache/local-store-owners.js';
import { fileLayer } from '../../../builder/model/image-layer.js';
import { defaultCacheDir } from '../../../builder/locations.js';
import { RootfsCache } from '../../../builder/rootfs/rootfs-cache.js';
import { TsbuildError } from '../../../layers/errors.js';
import { MediaType, type Digest } from '../../../layers/types.js';
import tarStream from 'tar-stream';
import { baseEntries, bigFile, listTree, secondEntries, withWrongDiffId, writeLayers } from './layer-fixtures.js';

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;

const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-rootfs-cache-'));
after(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;
const freshDir = (name: string): string => path.join(work, `${name}-${++counter}`);

/** The raw value of the fixture's `user.tsbuild-test` xattr, read with getfattr. */
const testXattr = (file: string): Buffer =>
  execFileSync('getfattr', ['-h', '--absolute-names', '--only-values', '-n', 'user.tsbuild-test', file]);

test('the cache directory follows TSBUILD_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
  assert.equal(defaultCacheDir({ TSBUILD_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/z' }), '/x/y');
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/z' }), '/z/tsbuild');
  assert.match(defaultCacheDir({}), /\/\.cache\/tsbuild$/);
});

test('a stack is unpacked once into the directory named by its ChainID, with whiteouts, owners, links and xattrs', async () => {
  const layers = await writeLayers(freshDir('layout'), baseEntries, secondEntries);
  const cache = new RootfsCache(freshDir('cache'));
  const dir = await cache.unpackedChain(layers);
  const expectedHex = chainId(layers.map((l) => l.diffId)).slice('sha256:'.length);
  assert.equal(dir, path.join(cache.dir, 'sha256', expectedHex));
  assert.equal(cache.unpackedLayers, 2);

  assert.equal(await readFile(path.join(dir, 'etc/second'), 'utf8'), 'second\n');
  await assert.rejects(lstat(path.join(dir, 'etc/hello')), { code: 'ENOENT' });
  const [tool, twin] = [await lstat(path.join(dir, 'bin/tool')), await lstat(path.join(dir, 'bin/tool-link'))];
  assert.equal(tool.ino, twin.ino);
  assert.equal(await readlink(path.join(dir, 'bin/sh')), 'tool');
  assert.equal((await lstat(path.join(dir, 'tmp'))).mode & 0o7777, 0o1777);
  assert.equal((await lstat(path.join(dir, 'bin/su'))).mode & 0o7777, 0o4755);
  assert.equal((await lstat(dir)).mode & 0o7777, 0o755);
  if (isRoot) assert.equal((await lstat(path.join(dir, 'home/app'))).uid, 1000);
  assert.deepEqual(testXattr(path.join(dir, 'etc/tagged')), Buffer.from([0, 1, 2, 255]));
  // Only the stacks folder is left: no lock file, no temp dir.
  assert.deepEqual(await readdir(cache.dir), ['sha256']);
});

test('unpacking removes the temp dirs that builds which died left, of any stack, and keeps live ones', async () => {
  const layers = await writeLayers(freshDir('layout'), baseEntries);
  const cache = new RootfsCache(freshDir('cache'));
  const [host, , , random] = ownedName().split('-');
  const deadOwner = `${host}-${spawnSync('true').pid}-1-${random}`;
  const other = 'ab'.repeat(32);
  const dead = `.tmp-${other}-${deadOwner}`;
  const live = `.tmp-${other}-${ownedName()}`;
  const unowned = `.tmp-${other}-0123456789ab`;
  for (const name of [dead, live, unowned]) await mkdir(path.join(cache.dir, name), { recursive: true });
  await cache.unpackedChain(layers);
  assert.deepEqual((await readdir(cache.dir)).sort(), [live, unowned, 'sha256'].sort());
});

test('a second request, even from a new cache instance, unpacks nothing and leaves the directory alone', async () => {
  const layers = await writeLayers(freshDir('layout'), baseEntries, secondEntries);
  const cacheDir = freshDir('cache');
  const first = new RootfsCache(cacheDir);
  const dir = await first.unpackedChain(layers);
  const before = await stat(dir);
  const listing = await listTree(dir);

  const second = new RootfsCache(cacheDir);
  assert.equal(await second.unpackedChain(layers), dir);
  assert.equal(second.unpackedLayers, 0);
  assert.equal(await first.unpackedChain(layers), dir);
  assert.equal(first.unpackedLayers, 2);
  const afterwards = await stat(dir);
  assert.equal(afterwards.ino, before.ino);
  assert.equal(afterwards.mtimeMs, before.mtimeMs);
  assert.deepEqual(await listTree(dir), listing);
});

test('concurrent requests in one process share one unpacking', async () => {
  const layers = await writeLayers(freshDir('layout'), baseEntries, secondEntries);
  const cache = new RootfsCache(freshDir('cache'));
  const dirs = await Promise.all([cache.unpackedChain(layers), cache.unpackedChain(layers), cache.unpackedChain(layers)]);
  assert.equal(new Set(dirs).size, 1);
  assert.equal(cache.unpackedLayers, 2);
});

/** `listTree` lines without the link count, which a linked copy of the tree raises. */
const withoutLinkCounts = (lines: string[]): string[] => lines.map((line) => line.split(' ').filter((_, i) => i !== 5).join(' '));

test('a longer stack starts from a linked copy of its cached prefix', async () => {
  const layers = await writeLayers(freshDir('layout'), baseEntries, secondEntries);
  const cacheDir = freshDir('cache');
  const prefixDir = await new RootfsCache(cacheDir).unpackedChain(layers.slice(0, 1));
  const prefixListing = await listTree(prefixDir);

  const cache = new RootfsCache(cacheDir);
  const full = await cache.unpackedChain(layers);
  assert.equal(cache.unpackedLayers, 1);
  assert.equal(await readFile(path.join(full, 'etc/second'), 'utf8'), 'second\n');
  await assert.rejects(lstat(path.join(full, 'etc/hello')), { code: 'ENOENT' });
  // The prefix's files are shared, not copied; its directories are the new stack's own.
  assert.equal((await lstat(path.join(full, 'bin/su'))).ino, (await lstat(path.join(prefixDir, 'bin/su'))).ino);
  assert.notEqual((await lstat(path.join(full, 'etc'))).ino, (await lstat(path.join(prefixDir, 'etc'))).ino);
  // Hardlinks, the setuid bit and the xattr carry over.
  assert.equal((await lstat(path.join(full, 'bin/tool'))).ino, (await lstat(path.join(full, 'bin/tool-link'))).ino);
  assert.equal((await lstat(path.join(full, 'bin/su'))).mode & 0o7777, 0o4755);
  assert.deepEqual(testXattr(path.join(full, 'etc/tagged')), Buffer.from([0, 1, 2, 255]));
  // The prefix itself is untouched, but for the link counts of the shared files; etc/hello, removed above it, is still there.
  assert.deepEqual(withoutLinkCounts(await listTree(prefixDir)), withoutLinkCounts(prefixListing));
  assert.equal(await readFile(path.join(prefixDir, 'etc/hello'), 'utf8'), 'hello\n');
});

test('a hardlink a later layer makes to a shared file gets an inode of its own, so its xattrs stay out of the prefix', async () => {
  // Made by hand: tsbuild's own writer only links to files earlier in the same layer.
  const pack = tarStream.pack();
  pack.entry({ name: 'etc/tagged-link', type: 'link', linkname: 'etc/tagged', pax: { 'SCHILY.xattr.user.tsbuild-test': 'relinked' } });
  pack.finalize();
  const linkLayer = freshDir('link-layer.tar');
  await pipeline(pack, createWriteStream(linkLayer));
  const bytes = await readFile(linkLayer);
  const digest: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const [base] = await writeLayers(freshDir('layout'), baseEntries);
  const layers = [base!, fileLayer({ mediaType: MediaType.Layer, digest, size: bytes.length }, digest, linkLayer)];
  const cacheDir = freshDir('cache');
  const prefixDir = await new RootfsCache(cacheDir).unpackedChain(layers.slice(0, 1));
  const prefixListing = await listTree(prefixDir);

  const full = await new RootfsCache(cacheDir).unpackedChain(layers);
  const [tagged, link, prefixTagged] = await Promise.all([path.join(full, 'etc/tagged'), path.join(full, 'etc/tagged-link'), path.join(prefixDir, 'etc/tagged')].map((p) => lstat(p)));
  assert.equal(tagged!.ino, link!.ino);
  assert.notEqual(tagged!.ino, prefixTagged!.ino);
  assert.deepEqual(testXattr(path.join(full, 'etc/tagged-link')), Buffer.from('relinked'));
  assert.deepEqual(testXattr(path.join(prefixDir, 'etc/tagged')), Buffer.from([0, 1, 2, 255]));
  assert.deepEqual(withoutLinkCounts(await listTree(prefixDir)), withoutLinkCounts(prefixListing));
  assert.equal((await lstat(path.join(prefixDir, 'etc/tagged'))).nlink, 1);
});

test('a layer whose content does not match its diff_id is refused and nothing is cached', async () => {
  const [base, second] = await writeLayers(freshDir('layout'), baseEntries, secondEntries);
  const cache = new RootfsCache(freshDir('cache'));
  const layers = [base, withWrongDiffId(second)];
  await assert.rejects(cache.unpackedChain(layers), (error: unknown) => error instanceof TsbuildError && error.code === 'DIGEST_MISMATCH');
  const hex = chainId(layers.map((l) => l.diffId)).slice('sha256:'.length);
  await assert.rejects(lstat(path.join(cache.dir, 'sha256', hex)), { code: 'ENOENT' });
  assert.deepEqual(await readdir(cache.dir), ['sha256']);
  assert.deepEqual(await readdir(path.join(cache.dir, 'sha256')), []);
});

test('two processes asking for the same stack at once both get one intact directory, unpacked once', async () => {
  // A big third layer keeps the first process busy while the second one arrives.
  const layers = await writeLayers(freshDir('layout'), baseEntries, secondEntries, [bigFile('big', 64 * 1024 * 1024)]);
  const cacheDir = freshDir('cache');
  const moduleUrl = new URL('../../../builder/rootfs/rootfs-cache.js', import.meta.url).href;
  const layerUrl = new URL('../../../builder/model/image-layer.js', import.meta.url).href;
  const script = `
    import { RootfsCache } from ${JSON.stringify(moduleUrl)};
    import { fileLayer } from ${JSON.stringify(layerUrl)};
    const cache = new RootfsCache(process.argv[1]);
    const layers = JSON.parse(process.argv[2]).map((l) => fileLayer(l.descriptor, l.diffId, l.path));
    const dir = await cache.unpackedChain(layers);
    console.log(JSON.stringify({ dir, unpacked: cache.unpackedLayers }));
  `;
  const files = await Promise.all(layers.map(async (l) => ({ descriptor: l.descriptor, diffId: l.diffId, path: await l.blobPath() })));
  const run = () => execFileAsync(process.execPath, ['--input-type=module', '-e', script, cacheDir, JSON.stringify(files)]);
  const results = (await Promise.all([run(), run()])).map(({ stdout }) => JSON.parse(stdout) as { dir: string; unpacked: number });

  assert.equal(results[0].dir, results[1].dir);
  assert.equal(results[0].unpacked + results[1].unpacked, 3, 'exactly one process unpacked the two layers');
  // Same tree as an undisturbed unpacking (the root's own times aside), and nothing left behind.
  const referenceDir = await new RootfsCache(freshDir('cache')).unpackedChain(layers);
  assert.deepEqual((await listTree(results[0].dir)).slice(1), (await listTree(referenceDir)).slice(1));
  assert.deepEqual(await readdir(cacheDir), ['sha256']);
});
