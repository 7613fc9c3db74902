import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { OverlayRootfs } from '../../../builder/rootfs/overlay-rootfs.js';
import { Workspace } from '../../../builder/workspace/workspace.js';
import { requires } from '../../support/requirement.js';

const isRoot = process.getuid?.() === 0;
const skip = requires(!isRoot && 'overlay mounts need root here');
const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-overlay-rootfs-'));
const workspaces: Workspace[] = [];
after(async () => {
  for (const workspace of workspaces) await workspace.remove();
  rmSync(work, { recursive: true, force: true });
});

/** An overlay of a lower directory holding `base/a`, `base/b` and `keep`, in a new workspace under `parent`. */
async function mounted(parent = work): Promise<{ rootfs: OverlayRootfs; lower: string }> {
  const workspace = await Workspace.create(parent);
  workspaces.push(workspace);
  const lower = await workspace.newDir('lower');
  await mkdir(path.join(lower, 'base'));
  for (const name of ['base/a', 'base/b', 'keep']) await writeFile(path.join(lower, name), `lower ${name}\n`);
  return { rootfs: await OverlayRootfs.mount(await workspace.newDir('rootfs'), lower, workspace), lower };
}

test('a stacked layer shows above the changes before it, and changes after it go to a new upper directory', { skip }, async () => {
  const { rootfs, lower } = await mounted();
  try {
    const read = (name: string): Promise<string> => readFile(path.join(rootfs.dir, name), 'utf8');
    // Changes of a step before the layer: one file rewritten, one deleted (a whiteout in the upper directory).
    await writeFile(path.join(rootfs.dir, 'base/a'), 'step a\n');
    await rm(path.join(rootfs.dir, 'base/b'));
    const firstUpper = rootfs.upperDir;

    let layerDir = '';
    const stacked = await rootfs.stackLayer(async (dir) => {
      layerDir = dir;
      await mkdir(path.join(dir, 'base'));
      await writeFile(path.join(dir, 'base/c'), 'layer c\n');
      await writeFile(path.join(dir, 'keep'), 'layer keep\n');
      return 'filled';
    });
    assert.deepEqual(stacked, { value: 'filled' });
    assert.notEqual(rootfs.upperDir, firstUpper);
    assert.deepEqual(await readdir(rootfs.upperDir), []);

    assert.equal(await read('base/a'), 'step a\n');
    await assert.rejects(lstat(path.join(rootfs.dir, 'base/b')), { code: 'ENOENT' });
    assert.equal(await read('base/c'), 'layer c\n');
    assert.equal(await read('keep'), 'layer keep\n');

    // A write to a stacked file lands in the new upper directory; the layer and the lower stay as they were.
    await writeFile(path.join(rootfs.dir, 'keep'), 'step keep\n');
    assert.equal(await read('keep'), 'step keep\n');
    assert.equal(await readFile(path.join(rootfs.upperDir, 'keep'), 'utf8'), 'step keep\n');
    assert.equal(await readFile(path.join(layerDir, 'keep'), 'utf8'), 'layer keep\n');
    assert.equal(await readFile(path.join(lower, 'keep'), 'utf8'), 'lower keep\n');
  } finally {
    await rootfs.release();
  }
});

test('when the mount options cannot take another directory, nothing is stacked and the mount is left as it was', { skip }, async () => {
  // Long folder names, so that the options reach the kernel's page within a few layers.
  const parent = path.join(work, 'x'.repeat(200), 'y'.repeat(200), 'z'.repeat(200));
  await mkdir(parent, { recursive: true });
  const { rootfs } = await mounted(parent);
  try {
    let stackedLayers = 0;
    let fills = 0;
    for (;;) {
      const before = rootfs.upperDir;
      const stacked = await rootfs.stackLayer(async (dir) => {
        fills++;
        await writeFile(path.join(dir, `layer-${stackedLayers}`), 'x');
      });
      if (stacked === undefined) {
        assert.equal(rootfs.upperDir, before);
        assert.equal(fills, stackedLayers, 'a layer that cannot be stacked is never filled');
        break;
      }
      stackedLayers++;
      assert.ok(stackedLayers < 20, 'the options should have filled a page by now');
    }
    assert.ok(stackedLayers > 0);
    await writeFile(path.join(rootfs.dir, 'after'), 'still writable\n');
    assert.equal(await readFile(path.join(rootfs.upperDir, 'after'), 'utf8'), 'still writable\n');
    assert.equal((await readdir(rootfs.dir)).filter((name) => name.startsWith('layer-')).length, stackedLayers);
  } finally {
    await rootfs.release();
  }
});
