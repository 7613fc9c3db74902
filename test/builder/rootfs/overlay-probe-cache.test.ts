/** The remembered overlay answer: kept after an overlay, used to skip the probe, forgotten when it fails. */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TsbuildError } from '../../../layers/errors.js';
import type { PreparedRootfs } from '../../../builder/rootfs/prepare.js';
import { prepareRememberingOverlay, type PrepareWithMode } from '../../../builder/rootfs/overlay-probe-cache.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-overlay-probe-'));
});
after(() => rm(work, { recursive: true, force: true }));

const overlay: PreparedRootfs = { dir: '/rootfs', upperDir: '/upper', release: async () => undefined };
const copy: PreparedRootfs = { dir: '/rootfs', release: async () => undefined };

/** A preparer that answers `answers[mode]` and records the modes it was asked for. */
function preparer(answers: { auto: PreparedRootfs; overlay?: () => PreparedRootfs }): PrepareWithMode & { modes: string[] } {
  const modes: string[] = [];
  const prepare = async (mode: 'auto' | 'overlay'): Promise<PreparedRootfs> => {
    modes.push(mode);
    if (mode === 'auto') return answers.auto;
    if (!answers.overlay) throw new Error('overlay asked for without a record');
    return answers.overlay();
  };
  return Object.assign(prepare, { modes });
}

test('an overlay from the probe is remembered, and the next build mounts one without probing', async () => {
  const cache = { dir: path.join(work, 'a'), workspaceDir: work, stacksDir: path.join(work, 'a', 'rootfs') };
  const first = preparer({ auto: overlay });
  assert.equal(await prepareRememberingOverlay(first, cache), overlay);
  assert.deepEqual(first.modes, ['auto']);
  const second = preparer({ auto: overlay, overlay: () => overlay });
  assert.equal(await prepareRememberingOverlay(second, cache), overlay);
  assert.deepEqual(second.modes, ['overlay']);
});

test('a copy is not remembered', async () => {
  const cache = { dir: path.join(work, 'b'), workspaceDir: work, stacksDir: path.join(work, 'b', 'rootfs') };
  const first = preparer({ auto: copy });
  await prepareRememberingOverlay(first, cache);
  const second = preparer({ auto: copy });
  assert.equal(await prepareRememberingOverlay(second, cache), copy);
  assert.deepEqual(second.modes, ['auto']);
});

test('a remembered overlay that fails to mount is forgotten and the build probes as before', async () => {
  const cache = { dir: path.join(work, 'c'), workspaceDir: work, stacksDir: path.join(work, 'c', 'rootfs') };
  await prepareRememberingOverlay(preparer({ auto: overlay }), cache);
  const failing = preparer({ auto: copy, overlay: () => { throw new TsbuildError('OVERLAY_MOUNT', 'cannot mount an overlay'); } });
  assert.equal(await prepareRememberingOverlay(failing, cache), copy);
  assert.deepEqual(failing.modes, ['overlay', 'auto']);
  const next = preparer({ auto: copy });
  await prepareRememberingOverlay(next, cache);
  assert.deepEqual(next.modes, ['auto']);
});

test('other failures are not taken for a missing overlay', async () => {
  const cache = { dir: path.join(work, 'd'), workspaceDir: work, stacksDir: path.join(work, 'd', 'rootfs') };
  await prepareRememberingOverlay(preparer({ auto: overlay }), cache);
  const failing = preparer({ auto: overlay, overlay: () => { throw new TsbuildError('ROOTFS_COPY', 'disk trouble'); } });
  await assert.rejects(prepareRememberingOverlay(failing, cache), /disk trouble/);
});

test('a record made under other conditions is not used', async () => {
  const cache = { dir: path.join(work, 'e'), workspaceDir: work, stacksDir: path.join(work, 'e', 'rootfs') };
  await prepareRememberingOverlay(preparer({ auto: overlay }), cache);
  const file = path.join(cache.dir, 'overlay-probe.json');
  const record = JSON.parse(await readFile(file, 'utf8')) as { key: string };
  await writeFile(file, JSON.stringify({ key: record.key.replace(/"kernel":"[^"]*"/, '"kernel":"0.0.0-other"') }));
  const next = preparer({ auto: overlay });
  await prepareRememberingOverlay(next, cache);
  assert.deepEqual(next.modes, ['auto']);
});
