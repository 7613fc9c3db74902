import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isMountPoint, mountsUnder } from '../../../builder/host/mountinfo.js';
import { mountOverlay, unmountOverlay } from '../../../builder/rootfs/overlay.js';
import { TsbuildError } from '../../../layers/errors.js';
import { requires } from '../../support/requirement.js';

const isRoot = process.getuid?.() === 0;
const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-overlay-'));
after(async () => {
  // Never delete through a mount a failed test may have left.
  for (const point of await mountsUnder(work)) await unmountOverlay(point);
  rmSync(work, { recursive: true, force: true });
});

async function dirs(name: string): Promise<[string, string, string, string]> {
  const base = path.join(work, name);
  const all = ['lower', 'upper', 'work', 'merged'].map((part) => path.join(base, part)) as [string, string, string, string];
  for (const dir of all) await mkdir(dir, { recursive: true });
  return all;
}

test('a mounted overlay shows the lower directory, writes go to the upper one, and unmount ends it', { skip: requires(!isRoot && 'overlay mounts need root here') }, async () => {
  const [lower, upper, workDir, merged] = await dirs('mount');
  await writeFile(path.join(lower, 'a'), 'lower\n');
  await mountOverlay([lower], upper, workDir, merged);
  try {
    assert.ok(await isMountPoint(merged));
    assert.equal(await readFile(path.join(merged, 'a'), 'utf8'), 'lower\n');
    await writeFile(path.join(merged, 'a'), 'upper\n');
    assert.equal(await readFile(path.join(lower, 'a'), 'utf8'), 'lower\n');
    assert.equal(await readFile(path.join(upper, 'a'), 'utf8'), 'upper\n');
  } finally {
    await unmountOverlay(merged);
  }
  assert.equal(await isMountPoint(merged), false);
  assert.deepEqual(await readdir(merged), []);
});

test('paths the mount options cannot express are refused before mounting', async () => {
  const [lower, upper, workDir] = await dirs('unsafe');
  const odd = path.join(work, 'odd,lowerdir=x');
  await mkdir(odd);
  await assert.rejects(mountOverlay([lower], upper, workDir, odd), (error: unknown) => error instanceof TsbuildError && error.code === 'OVERLAY_MOUNT');
  assert.equal(await isMountPoint(odd), false);
});

test('a failing mount is reported as OVERLAY_MOUNT on one line naming the target and the reason', async () => {
  const [, upper, workDir, merged] = await dirs('missing-lower');
  await assert.rejects(mountOverlay([path.join(work, 'no-such-lower')], upper, workDir, merged), (error: unknown) => {
    assert.ok(error instanceof TsbuildError && error.code === 'OVERLAY_MOUNT', String(error));
    assert.doesNotMatch(error.message, /\n/);
    // As root the kernel finds no lower directory; without root it refuses the mount.
    assert.match(error.message, new RegExp(`^cannot mount an overlay at ${merged}: (ENOENT|EPERM): mount '${merged}' failed$`));
    return true;
  });
  assert.equal(await isMountPoint(merged), false);
});

test('a busy overlay is detached lazily and its files stay readable until let go', { skip: requires(!isRoot && 'overlay mounts need root here') }, async () => {
  const [lower, upper, workDir, merged] = await dirs('busy');
  await writeFile(path.join(lower, 'held'), 'held\n');
  await mountOverlay([lower], upper, workDir, merged);
  const handle = await open(path.join(merged, 'held'));
  try {
    await unmountOverlay(merged);
    assert.equal(await isMountPoint(merged), false);
    assert.equal(await handle.readFile('utf8'), 'held\n');
  } finally {
    await handle.close();
  }
});

test('unmounting something that is not mounted does nothing', async () => {
  const [, , , merged] = await dirs('not-mounted');
  await unmountOverlay(merged);
  assert.equal(await isMountPoint(merged), false);
});
