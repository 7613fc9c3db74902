import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { ImageLayer } from '../../../builder/model/image-layer.js';
import { Workspace } from '../../../builder/workspace/workspace.js';
import { isMountPoint } from '../../../builder/host/mountinfo.js';
import { prepareRootfs } from '../../../builder/rootfs/prepare.js';
import { RootfsCache } from '../../../builder/rootfs/rootfs-cache.js';
import { baseEntries, listTree, secondEntries, writeLayers } from './layer-fixtures.js';
import { requires } from '../../support/requirement.js';

const isRoot = process.getuid?.() === 0;
const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-prepare-'));
const cache = new RootfsCache(path.join(work, 'cache'));
const workspaces: Workspace[] = [];
let layersPromise: Promise<ImageLayer[]> | undefined;
const layers = (): Promise<ImageLayer[]> => (layersPromise ??= writeLayers(path.join(work, 'layout'), baseEntries, secondEntries));

after(async () => {
  for (const workspace of workspaces) await workspace.remove();
  rmSync(work, { recursive: true, force: true });
});

async function newWorkspace(): Promise<Workspace> {
  const workspace = await Workspace.create(work);
  workspaces.push(workspace);
  return workspace;
}

test('an overlay rootfs writes only to its upper directory and unmounts on release', { skip: requires(!isRoot && 'overlay mounts need root here') }, async () => {
  const workspace = await newWorkspace();
  const lower = await cache.unpackedChain(await layers());
  const lowerListing = await listTree(lower);

  const rootfs = await prepareRootfs(await layers(), workspace, { mode: 'overlay', cache });
  try {
    assert.ok(rootfs.upperDir, 'an overlay has an upper directory');
    assert.ok(await isMountPoint(rootfs.dir));
    assert.equal(await readFile(path.join(rootfs.dir, 'etc/second'), 'utf8'), 'second\n');

    await writeFile(path.join(rootfs.dir, 'etc/new'), 'new\n');
    await writeFile(path.join(rootfs.dir, 'bin/tool'), 'changed\n');
    await rm(path.join(rootfs.dir, 'etc/tagged'));
    await chmod(path.join(rootfs.dir, 'home/app'), 0o700);
    await mkdir(path.join(rootfs.dir, 'var/lib'), { recursive: true });

    assert.deepEqual(await listTree(lower), lowerListing, 'the cached stack is untouched');
    const upper = rootfs.upperDir;
    assert.equal(await readFile(path.join(upper, 'etc/new'), 'utf8'), 'new\n');
    assert.equal(await readFile(path.join(upper, 'bin/tool'), 'utf8'), 'changed\n');
    const whiteout = await lstat(path.join(upper, 'etc/tagged'));
    assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0, 'a deletion is an overlay whiteout');
    assert.equal((await lstat(path.join(upper, 'home/app'))).mode & 0o7777, 0o700);
    assert.ok((await lstat(path.join(upper, 'var/lib'))).isDirectory());
    assert.deepEqual((await readdir(upper)).sort(), ['bin', 'etc', 'home', 'var']);
  } finally {
    await rootfs.release();
  }
  assert.equal(await isMountPoint(rootfs.dir), false);
  await rootfs.release();
  assert.deepEqual(await listTree(lower), lowerListing);
});

test('release unmounts an overlay that is still in use', { skip: requires(!isRoot && 'overlay mounts need root here') }, async () => {
  const workspace = await newWorkspace();
  const rootfs = await prepareRootfs(await layers(), workspace, { mode: 'overlay', cache });
  const busy = await open(path.join(rootfs.dir, 'etc/second'), 'r');
  try {
    await rootfs.release();
    assert.equal(await isMountPoint(rootfs.dir), false);
  } finally {
    await busy.close();
  }
});

test('auto mode mounts an overlay where overlays work', { skip: requires(!isRoot && 'overlay mounts need root here') }, async () => {
  const rootfs = await prepareRootfs(await layers(), await newWorkspace(), { cache });
  try {
    assert.ok(rootfs.upperDir);
    assert.ok(await isMountPoint(rootfs.dir));
  } finally {
    await rootfs.release();
  }
});

test('a copied rootfs keeps hardlinks, owners, modes and symlinks, and changes stay in the copy', async () => {
  const workspace = await newWorkspace();
  const lower = await cache.unpackedChain(await layers());
  const lowerListing = await listTree(lower);

  const rootfs = await prepareRootfs(await layers(), workspace, { mode: 'copy', cache });
  try {
    assert.equal(rootfs.upperDir, undefined);
    assert.equal(await isMountPoint(rootfs.dir), false);
    assert.ok(rootfs.dir.startsWith(workspace.dir + path.sep));
    // The copy is the cached tree, entry for entry; only the root's own times may differ.
    assert.deepEqual((await listTree(rootfs.dir)).slice(1), lowerListing.slice(1));

    const [tool, twin] = [await lstat(path.join(rootfs.dir, 'bin/tool')), await lstat(path.join(rootfs.dir, 'bin/tool-link'))];
    assert.equal(tool.ino, twin.ino);
    assert.equal(tool.nlink, 2);
    assert.equal(await readlink(path.join(rootfs.dir, 'bin/sh')), 'tool');
    assert.equal((await lstat(path.join(rootfs.dir, 'bin/su'))).mode & 0o7777, 0o4755);
    assert.equal((await lstat(path.join(rootfs.dir, 'tmp'))).mode & 0o7777, 0o1777);
    const app = await lstat(path.join(rootfs.dir, 'home/app'));
    assert.equal(app.mode & 0o7777, 0o750);
    if (isRoot) assert.deepEqual([app.uid, app.gid], [1000, 1000]);

    await writeFile(path.join(rootfs.dir, 'bin/tool'), 'changed\n');
    await rm(path.join(rootfs.dir, 'etc/second'));
    assert.deepEqual(await listTree(lower), lowerListing, 'the cached stack is untouched');
  } finally {
    await rootfs.release();
  }
});

test('no layers give an empty rootfs', async () => {
  const rootfs = await prepareRootfs([], await newWorkspace(), { cache });
  assert.deepEqual(await readdir(rootfs.dir), []);
  await rootfs.release();
});

// Last in this file: after a failed mount, auto mode copies for the rest of the process.
test('auto mode copies where the overlay cannot be mounted, and keeps copying', async () => {
  // Overlay options cannot express a path with a comma, so no overlay mounts in this workspace.
  const parent = path.join(work, 'odd,parent');
  await mkdir(parent);
  const workspace = await Workspace.create(parent);
  workspaces.push(workspace);
  const lowerListing = await listTree(await cache.unpackedChain(await layers()));
  const rootfs = await prepareRootfs(await layers(), workspace, { cache });
  try {
    assert.equal(rootfs.upperDir, undefined);
    assert.equal(await isMountPoint(rootfs.dir), false);
    assert.deepEqual((await listTree(rootfs.dir)).slice(1), lowerListing.slice(1));
  } finally {
    await rootfs.release();
  }
  const next = await prepareRootfs(await layers(), await newWorkspace(), { cache });
  try {
    assert.equal(next.upperDir, undefined, 'a workspace where overlays would mount is copied too');
  } finally {
    await next.release();
  }
});
