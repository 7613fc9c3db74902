import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LocalCacheStore } from '../../../builder/cache/local-store.js';
import { StepCache } from '../../../builder/cache/step-cache.js';
import { fileLayer } from '../../../builder/model/image-layer.js';
import type { PlannedStage } from '../../../builder/model/plan.js';
import { sha256Digest } from '../../../layers/digest.js';
import { MediaType, type Digest } from '../../../layers/types.js';
import { amd64, runStep } from './copy-fixture.js';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-step-cache-'));
  temps.push(dir);
  return dir;
}

const stage: PlannedStage = { index: 0, location: { file: '/ctx/Dockerfile', startLine: 1, endLine: 1 }, base: { kind: 'scratch' }, platform: amd64, steps: [], config: {} };

function probeOf(cache: StepCache, line: number) {
  return cache.probe({
    parent: { kind: 'image', digest: sha256Digest('base') },
    step: runStep('/ctx/Dockerfile', line, { createdBy: `RUN step ${line}`, args: ['/bin/sh', '-c', `step ${line}`] }),
    platform: amd64,
    stage,
    stepIndex: line,
    layerFormat: { compression: 'gzip', sourceDateEpoch: null },
  });
}

/** A blob file as a step writes it, and the layer that names it; `size` overrides the size the descriptor claims. */
async function stepLayer(dir: string, size?: number) {
  const bytes = randomBytes(4096);
  const digest: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const path = join(dir, digest.slice(7));
  await writeFile(path, bytes);
  return { path, layer: fileLayer({ mediaType: MediaType.LayerGzip, digest, size: size ?? bytes.length }, sha256Digest(bytes.toString('hex')), path) };
}

function stepCache(store: LocalCacheStore): StepCache {
  return new StepCache({ store, disabled: false, disabledStages: new Set(), buildIdentity: '/ctx/Dockerfile' });
}

test('a remembered step is a hit at once, in this build and the next, its blob linked rather than copied', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const cache = stepCache(store);
  const first = await probeOf(cache, 2);
  assert.equal(first.hit, undefined);
  const { path, layer } = await stepLayer(dir);
  await first.remember(layer, 'RUN step 2');
  // Looked up again before anything waited for the write: the lookup waits for it.
  const again = await probeOf(cache, 2);
  assert.equal(again.hit?.layer?.descriptor.digest, layer.descriptor.digest);
  await cache.settle();
  const blob = store.blobPath(layer.descriptor.digest);
  assert.equal((await stat(blob)).ino, (await stat(path)).ino);
  await store.release();

  const next = stepCache(await LocalCacheStore.open(join(dir, 'cache')));
  const hit = (await probeOf(next, 2)).hit;
  assert.deepEqual(await readFile(blob), await readFile(path));
  assert.equal(hit?.layer?.descriptor.digest, layer.descriptor.digest);
  assert.equal((await probeOf(next, 3)).miss?.summary !== undefined, true);
});

test('a result the store refuses fails the build: at the next lookup, or when the build settles', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const cache = stepCache(store);
  // A file that is not the size its descriptor says is refused even though the build wrote it.
  const { layer } = await stepLayer(dir, 4095);
  await (await probeOf(cache, 2)).remember(layer, 'RUN step 2');
  await assert.rejects(cache.settle(), { code: 'DIGEST_MISMATCH' });
  await assert.rejects(probeOf(cache, 3), { code: 'DIGEST_MISMATCH' });
  await store.release();
  assert.equal((await (await LocalCacheStore.open(join(dir, 'cache'))).usage()).records, 0);
});
