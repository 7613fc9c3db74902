import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { build } from '../../builder/build.js';
import { GZIP_BLOCK_BYTES, gzipSyncInBlocks, looksIncompressible, ParallelGzip } from '../../layers/parallel-gzip.js';
import { unpackWithUmoci, validateLayout } from '../support/validate-layout.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-parallel-gzip-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Log-like text with random bytes mixed in, `size` bytes long. */
function sample(size: number): Buffer {
  const parts: Buffer[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const part = i % 50 === 0 ? randomBytes(4096) : Buffer.from(`line ${i}: the quick brown fox jumps over the lazy dog\n`);
    parts.push(part);
    length += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

/** `input` compressed at `level`, written in pieces of `piece` bytes. */
async function compress(input: Buffer, level: number, piece: number, parallel?: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces = function* (): Generator<Buffer> {
    for (let at = 0; at < input.length; at += piece) yield input.subarray(at, at + piece);
  };
  await pipeline(
    Readable.from(pieces(), { objectMode: false }),
    new ParallelGzip(level, parallel),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

test('the output is one gzip member per block of input, the same however the input was cut and however many run at once', async () => {
  const input = sample(3 * GZIP_BLOCK_BYTES + 12_345);
  const expected = Buffer.concat(
    [0, 1, 2, 3].map((i) => gzipSync(input.subarray(i * GZIP_BLOCK_BYTES, (i + 1) * GZIP_BLOCK_BYTES), { level: 4 })),
  );
  assert.ok((await compress(input, 4, 7_919)).equals(expected), 'odd-sized pieces');
  assert.ok((await compress(input, 4, GZIP_BLOCK_BYTES)).equals(expected), 'whole blocks');
  assert.ok((await compress(input, 4, 5 * GZIP_BLOCK_BYTES, 1)).equals(expected), 'one piece, one block at a time');
  assert.ok(!(await compress(input, 1, 65_536)).equals(expected), 'the level reaches zlib');
});

test('a block of random bytes is stored, not deflated; text and mixed blocks are deflated; the output is the same however it was cut', async () => {
  const text = sample(GZIP_BLOCK_BYTES);
  const random = randomBytes(GZIP_BLOCK_BYTES);
  const input = Buffer.concat([text, random, text.subarray(0, 5000)]);
  assert.equal(looksIncompressible(random), true);
  assert.equal(looksIncompressible(text), false);
  assert.equal(looksIncompressible(Buffer.concat([text.subarray(0, GZIP_BLOCK_BYTES / 2), random.subarray(0, GZIP_BLOCK_BYTES / 2)])), false);
  // zlib cuts stored blocks to the output space it is given: a stored member gets one buffer 1 KiB larger than its block.
  const expected = Buffer.concat([gzipSync(text, { level: 6 }), gzipSync(random, { level: 0, chunkSize: random.length + 1024 }), gzipSync(text.subarray(0, 5000), { level: 6 })]);
  assert.ok((await compress(input, 6, 7_919)).equals(expected), 'odd-sized pieces');
  assert.ok((await compress(input, 6, GZIP_BLOCK_BYTES, 1)).equals(expected), 'whole blocks, one at a time');
  assert.ok(gunzipSync(expected).equals(input));
});

test('gzip and zlib read the members back as one stream, empty input included', async () => {
  for (const input of [sample(2 * GZIP_BLOCK_BYTES + 1), Buffer.alloc(0), sample(100)]) {
    const compressed = await compress(input, 1, 65_536);
    const path = join(work, 'out.gz');
    writeFileSync(path, compressed);
    execFileSync('gzip', ['-t', path]);
    assert.ok(execFileSync('gzip', ['-dc', path], { maxBuffer: 1 << 26 }).equals(input));
    assert.ok(gunzipSync(compressed).equals(input));
  }
});

test('a layer of several members builds twice into the same digest and reads back with skopeo and umoci', async () => {
  const context = join(work, 'context');
  execFileSync('mkdir', ['-p', context]);
  const big = sample(3 * GZIP_BLOCK_BYTES + 777);
  writeFileSync(join(context, 'big.log'), big);
  writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.log /data/\n');
  const layers: string[] = [];
  for (const name of ['one', 'two']) {
    const dest = join(work, name);
    await build({ source: { context }, env: process.env, outputs: { targets: [{ type: 'oci', dest, tar: false }], tags: ['t:1'] }, image: { sourceDateEpoch: 1_700_000_000 } });
    await validateLayout(dest);
    const index = JSON.parse(await readFile(join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(await readFile(join(dest, 'blobs', ...index.manifests[0]!.digest.split(':')), 'utf8')) as { layers: Array<{ digest: string }> };
    layers.push(manifest.layers.map((layer) => layer.digest).join(','));
    const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
    try {
      const unpacked = readFileSync(join(rootfs, 'data', 'big.log'));
      assert.equal(createHash('sha256').update(unpacked).digest('hex'), createHash('sha256').update(big).digest('hex'));
    } finally {
      await cleanup();
    }
  }
  assert.equal(layers[0], layers[1]);
});

test('compressed at once on this thread, input gives the very bytes the stream makes of it', async () => {
  const inputs = {
    empty: Buffer.alloc(0),
    'a line': Buffer.from('step1\n'),
    'random, stored': randomBytes(64 * 1024),
    'several blocks': sample(2 * GZIP_BLOCK_BYTES + 4321),
  };
  for (const [name, input] of Object.entries(inputs)) {
    for (const level of [1, 9]) {
      const streamed = await compress(input, level, 100_000);
      assert.ok(gzipSyncInBlocks(level, input).equals(streamed), `${name} at level ${level}`);
      assert.ok(gunzipSync(streamed).equals(input));
    }
  }
});
