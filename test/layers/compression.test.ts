import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, test } from 'node:test';
import {
  SNIFF_BYTES,
  compressStream,
  decompressStream,
  detectCompression,
  isArchive,
  layerMediaType,
  peek,
  type ArchiveCompression,
} from '../../layers/compression.js';
import { TsbuildError } from '../../layers/errors.js';
import { MediaType } from '../../layers/types.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-compression-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Compressible but not trivial: text lines mixed with random bytes. */
function sample(size: number): Buffer {
  const parts: Buffer[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const part = i % 3 === 0 ? randomBytes(512) : Buffer.from(`line ${i} of the sample data\n`.repeat(20));
    parts.push(part);
    length += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function compress(bytes: Buffer, ...args: Parameters<typeof compressStream>): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from([bytes]), compressStream(...args), sink);
  return Buffer.concat(parts);
}

function fileWith(name: string, bytes: Buffer): string {
  const path = join(work, name);
  writeFileSync(path, bytes);
  return path;
}

function isCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TsbuildError, `expected a TsbuildError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

/** Runs `body` with PATH pointing at an empty directory, so that no external command can be found. */
async function withoutCommands(body: () => Promise<void>): Promise<void> {
  const saved = process.env.PATH;
  process.env.PATH = mkdtempSync(join(work, 'empty-path-'));
  try {
    await body();
  } finally {
    process.env.PATH = saved;
  }
}

test('each compression has its OCI layer media type', () => {
  assert.equal(layerMediaType('gzip'), MediaType.LayerGzip);
  assert.equal(layerMediaType('zstd'), MediaType.LayerZstd);
  assert.equal(layerMediaType('uncompressed'), MediaType.Layer);
});

test('gzip output passes gzip -t and decompresses to the input, at every level', async () => {
  const input = sample(300_000);
  const sizes: number[] = [];
  for (const level of [undefined, 0, 1, 6, 9]) {
    const path = fileWith(`gzip-${level}.gz`, await compress(input, 'gzip', level));
    execFileSync('gzip', ['-t', path]);
    assert.deepEqual(execFileSync('gzip', ['-dc', path], { maxBuffer: 1 << 26 }), input);
    sizes.push(readFileSync(path).length);
  }
  // Level 0 stores, level 9 compresses: the level really reaches zlib.
  assert.ok(sizes[1]! > input.length && sizes[4]! < input.length, sizes.join(','));
});

test('zstd output passes zstd -t and decompresses to the input, including fast and ultra levels', async () => {
  const input = sample(300_000);
  for (const level of [undefined, -5, 1, 19, 22]) {
    const path = fileWith(`zstd-${level}.zst`, await compress(input, 'zstd', level));
    execFileSync('zstd', ['-q', '-t', path]);
    assert.deepEqual(execFileSync('zstd', ['-q', '-dc', path], { maxBuffer: 1 << 26 }), input);
  }
});

test('compression is deterministic', async () => {
  const input = sample(200_000);
  for (const compression of ['gzip', 'zstd'] as const) {
    assert.deepEqual(await compress(input, compression, 3), await compress(input, compression, 3), compression);
  }
});

test('uncompressed passes bytes through and takes no level', async () => {
  const input = sample(10_000);
  assert.deepEqual(await compress(input, 'uncompressed'), input);
  assert.throws(() => compressStream('uncompressed', 1), isCode('COMPRESSION_LEVEL'));
});

test('levels outside each format\'s range are rejected', () => {
  for (const level of [-1, 10, 1.5, Number.NaN]) {
    assert.throws(() => compressStream('gzip', level), isCode('COMPRESSION_LEVEL'), `gzip ${level}`);
  }
  for (const level of [23, -131073, 2.5, Number.POSITIVE_INFINITY]) {
    assert.throws(() => compressStream('zstd', level), isCode('COMPRESSION_LEVEL'), `zstd ${level}`);
  }
});

test('zstd compression without the zstd command fails with TOOL_MISSING', async () => {
  await withoutCommands(async () => {
    await assert.rejects(compress(sample(1000), 'zstd'), isCode('TOOL_MISSING'));
  });
});

test('a failing command is reported with its exit status and message', async () => {
  // zstd magic followed by garbage: zstd -d exits non-zero.
  const corrupt = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(4000)]);
  await assert.rejects(
    readAll(await decompressStream(Readable.from([corrupt]))),
    (error: unknown) => isCode('COMMAND_FAILED')(error) && /zstd exited with status [1-9]/.test((error as Error).message),
  );
});

test('corrupt gzip data fails with DECOMPRESS', async () => {
  const good = await compress(sample(100_000), 'gzip');
  const corrupt = Buffer.concat([good.subarray(0, 20), randomBytes(2000)]);
  await assert.rejects(readAll(await decompressStream(Readable.from([corrupt]))), isCode('DECOMPRESS'));
});

const TOOLS: Record<ArchiveCompression, string[]> = {
  gzip: ['gzip', '-c'],
  zstd: ['zstd', '-q', '-c'],
  bzip2: ['bzip2', '-c'],
  xz: ['xz', '-c'],
};

test('files made by gzip, zstd, bzip2 and xz are detected and decompressed', async () => {
  const input = sample(400_000);
  for (const [format, [command, ...args]] of Object.entries(TOOLS) as [ArchiveCompression, string[]][]) {
    const compressed = execFileSync(command!, args, { input, maxBuffer: 1 << 26 });
    assert.equal(detectCompression(compressed.subarray(0, SNIFF_BYTES)), format);
    assert.ok(isArchive(compressed.subarray(0, SNIFF_BYTES)), format);
    // Small chunks, so that sniffing has to gather the leading bytes from several reads.
    const chunks: Buffer[] = [];
    for (let i = 0; i < compressed.length; i += 100) chunks.push(compressed.subarray(i, i + 100));
    assert.deepEqual(await readAll(await decompressStream(Readable.from(chunks))), input, format);
  }
});

test('concatenated gzip members decompress as one stream', async () => {
  const [a, b] = [sample(5000), sample(7000)];
  const both = Buffer.concat([execFileSync('gzip', ['-c'], { input: a }), execFileSync('gzip', ['-c'], { input: b })]);
  assert.deepEqual(await readAll(await decompressStream(Readable.from([both]))), Buffer.concat([a, b]));
});

test('bzip2 and xz decompression without their commands fail clearly', async () => {
  const inputs = {
    bzip2: execFileSync('bzip2', ['-c'], { input: sample(1000) }),
    xz: execFileSync('xz', ['-c'], { input: sample(1000) }),
  };
  await withoutCommands(async () => {
    await assert.rejects(readAll(await decompressStream(Readable.from([inputs.bzip2]))), isCode('TOOL_MISSING'));
    await assert.rejects(readAll(await decompressStream(Readable.from([inputs.xz]))), isCode('TOOL_MISSING'));
  });
});

test('plain data passes through untouched, however short', async () => {
  for (const input of [Buffer.alloc(0), Buffer.from([0x1f]), Buffer.from('plain text'), sample(100_000)]) {
    const source = Readable.from(input.length > 0 ? [input] : []);
    assert.deepEqual(await readAll(await decompressStream(source)), input);
  }
});

test('isArchive recognises tar files by their ustar magic and nothing else', () => {
  const dir = join(work, 'tar-src');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'f'), 'x');
  for (const format of ['posix', 'gnu', 'ustar']) {
    const tar = execFileSync('tar', ['-c', `--format=${format}`, '-C', dir, 'f']);
    assert.equal(detectCompression(tar), null, format);
    assert.ok(isArchive(tar.subarray(0, SNIFF_BYTES)), format);
  }
  assert.ok(!isArchive(Buffer.from('#!/bin/sh\necho not an archive\n')));
  assert.ok(!isArchive(readFileSync(process.execPath).subarray(0, SNIFF_BYTES)));
  assert.ok(!isArchive(Buffer.alloc(0)));
});

test('peek returns the leading bytes and a stream that still starts at byte 0', async () => {
  const input = sample(50_000);
  for (const objectMode of [true, false]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += 10) chunks.push(input.subarray(i, i + 10));
    const { head, stream } = await peek(Readable.from(chunks, { objectMode }), 300);
    assert.ok(head.length >= 300);
    assert.deepEqual(head, input.subarray(0, head.length));
    assert.deepEqual(await readAll(stream), input);
  }
});

test('peek at a stream shorter than asked returns all of it', async () => {
  const input = sample(100);
  const { head, stream } = await peek(Readable.from([input.subarray(0, 60), input.subarray(60)]), 300);
  assert.deepEqual(head, input);
  assert.deepEqual(await readAll(stream), input);
});
