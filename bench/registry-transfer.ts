/**
 * Registry transfer speed on loopback: an image with one 100 MiB layer of random bytes (stored
 * uncompressed, so the bytes on the wire are the layer's) pushed to Debian's docker-registry on
 * 127.0.0.1, pulled into an empty cache, then pulled again with the cache filled. Prints the median
 * of each over the rounds with MiB/s. Needs /usr/bin/docker-registry (the test set-up installs it).
 *
 *     node dist/bench/registry-transfer.js [rounds]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { hostPlatform } from '../builder/plan/platform.js';
import { layoutItem } from '../layers/layout-image.js';
import { OciLayout } from '../layers/oci-layout.js';
import { MediaType, type Descriptor } from '../layers/types.js';
import { writeLayer } from '../layers/write-layer.js';
import { pullImage } from '../registry-client/pull.js';
import { pushImage } from '../registry-client/push.js';
import { parseReference } from '../registry-client/reference.js';
import { startRegistry } from '../test/support/registry.js';
import { median } from './median.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const LAYER_BYTES = 100 * 1024 * 1024;
const MiB = 1024 * 1024;

/** Writes a one-layer image into `layout` and returns its manifest descriptor. */
async function writeImage(layout: OciLayout): Promise<Descriptor> {
  const chunk = randomBytes(MiB);
  const layer = await writeLayer(
    [{
      path: 'payload', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: LAYER_BYTES,
      // A fresh random prefix per chunk keeps every MiB distinct without generating 100 MiB of randomness.
      open: () => Readable.from((function* () { for (let i = 0; i < LAYER_BYTES / MiB; i++) yield Buffer.concat([randomBytes(16), chunk.subarray(16)]); })()),
    }],
    layout,
    { compression: 'uncompressed' },
  );
  const platform = hostPlatform();
  const config = Buffer.from(JSON.stringify({ architecture: platform.architecture, os: platform.os, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
  const configDescriptor = await layout.writeBlob(config, MediaType.ImageConfig);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers: [layer.descriptor] }));
  return layout.writeBlob(manifest, MediaType.ImageManifest);
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return (performance.now() - started) / 1000;
}

const registry = await startRegistry();
const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-registry-'));
const times = { push: [] as number[], pull: [] as number[], cachedPull: [] as number[] };
try {
  const layout = await OciLayout.open(join(work, 'source'), { create: true });
  for (let round = 0; round < ROUNDS; round++) {
    // A new image each round, so the registry has none of its blobs.
    const root = await writeImage(layout);
    const ref = parseReference(`${registry.host}/bench/app:${round}`);
    times.push.push(await timed(() => pushImage([ref], layoutItem(layout, root))));
    const cache = join(work, `cache-${round}`);
    const pull = (): Promise<unknown> => pullImage(ref, { platform: hostPlatform(), cache });
    times.pull.push(await timed(pull));
    times.cachedPull.push(await timed(pull));
  }
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}

console.log(`one ${LAYER_BYTES / MiB} MiB uncompressed layer, docker-registry on ${registry.host}, ${ROUNDS} rounds (median)`);
console.log('| operation | time | speed |');
console.log('|---|---|---|');
for (const [label, seconds] of [['push', median(times.push)], ['pull, empty cache', median(times.pull)]] as const) {
  console.log(`| ${label} | ${seconds.toFixed(2)} s | ${(LAYER_BYTES / MiB / seconds).toFixed(0)} MiB/s |`);
}
console.log(`| pull, cache filled | ${(median(times.cachedPull) * 1000).toFixed(0)} ms | — |`);
