/**
 * Writes a layer holding one 2 GiB file (sparse, with some random regions) through writeLayer,
 * gzip level 1 and uncompressed, and prints time, throughput and peak RSS. Exits non-zero when
 * the peak RSS exceeds 200 MB, which would mean a layer is being held in memory.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Compression } from '../layers/compression.js';
import type { LayerEntry } from '../layers/entry.js';
import { OciLayout } from '../layers/oci-layout.js';
import { writeLayer } from '../layers/write-layer.js';

const FILE_SIZE = 2 * 1024 ** 3;
const RANDOM_REGIONS = 8;
const RANDOM_REGION_SIZE = 8 * 1024 ** 2;
const RSS_LIMIT_MB = 200;
const MB = 1024 ** 2;

/** A sparse file of `size` bytes with a few regions of random bytes, so compressors have real work. */
async function createTestFile(path: string, size: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, size);
  const handle = await open(path, 'r+');
  try {
    for (let i = 0; i < RANDOM_REGIONS; i++) {
      await handle.write(randomBytes(RANDOM_REGION_SIZE), 0, RANDOM_REGION_SIZE, Math.floor((size / RANDOM_REGIONS) * i));
    }
  } finally {
    await handle.close();
  }
}

function peakRssMb(): number {
  // maxRSS is in kilobytes.
  return process.resourceUsage().maxRSS / 1024;
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-layer-bench-'));
  try {
    const bigFile = join(dir, 'big.bin');
    await createTestFile(bigFile, FILE_SIZE);
    const layout = await OciLayout.open(join(dir, 'layout'), { create: true });
    const entries: LayerEntry[] = [
      { path: 'data', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 },
      { path: 'data/big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: FILE_SIZE, open: () => createReadStream(bigFile) },
    ];
    const runs: [Compression, number | undefined][] = [
      ['gzip', 1],
      ['uncompressed', undefined],
    ];
    for (const [compression, level] of runs) {
      const start = performance.now();
      const result = await writeLayer(entries, layout, { compression, level });
      const seconds = (performance.now() - start) / 1000;
      const name = level === undefined ? compression : `${compression} level ${level}`;
      console.log(
        `${name}: ${(result.uncompressedSize / MB).toFixed(0)} MB tar -> ${(result.descriptor.size / MB).toFixed(1)} MB blob ` +
          `in ${seconds.toFixed(1)} s (${(result.uncompressedSize / MB / seconds).toFixed(0)} MB/s), ` +
          `peak RSS so far ${peakRssMb().toFixed(0)} MB`,
      );
      // Free the disk space before the next run.
      await rm(layout.path(result.descriptor.digest));
    }
    const peak = peakRssMb();
    if (peak > RSS_LIMIT_MB) {
      console.error(`peak RSS ${peak.toFixed(0)} MB exceeds the ${RSS_LIMIT_MB} MB limit`);
      return 1;
    }
    console.log(`peak RSS ${peak.toFixed(0)} MB is within the ${RSS_LIMIT_MB} MB limit`);
    return 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
