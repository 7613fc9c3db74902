import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { access, mkdir, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type { BlobStore } from '../../layers/blob-store.js';
import type { Compression } from '../../layers/compression.js';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { MediaType, type Digest } from '../../layers/types.js';
import { writeLayer } from '../../layers/write-layer.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-write-layer-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A plain directory of blobs: temp files in `tmp/`, blobs in `blobs/sha256/<hex>`. */
class DirectoryBlobStore implements BlobStore {
  constructor(readonly root: string) {}

  async tempPath(): Promise<string> {
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    return join(this.root, 'tmp', randomUUID());
  }

  async commit(tempPath: string, digest: Digest): Promise<void> {
    if (await this.has(digest)) {
      await rm(tempPath);
      return;
    }
    await mkdir(dirname(this.path(digest)), { recursive: true });
    await rename(tempPath, this.path(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    return access(this.path(digest)).then(
      () => true,
      () => false,
    );
  }

  path(digest: Digest): string {
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  tempFiles(): string[] {
    return readdirSync(join(this.root, 'tmp'));
  }

  blobs(): string[] {
    try {
      return readdirSync(join(this.root, 'blobs', 'sha256'));
    } catch {
      return [];
    }
  }
}

function newStore(): DirectoryBlobStore {
  return new DirectoryBlobStore(mkdtempSync(join(work, 'store-')));
}

const BASE = { mode: 0o644, uid: 0, gid: 0, mtime: 1_650_000_000 };

function file(path: string, content: Buffer | string, extra: Partial<LayerEntry> = {}): LayerEntry {
  const bytes = Buffer.from(content);
  return { ...BASE, path, type: 'file', size: bytes.length, open: () => Readable.from([bytes]), ...extra };
}

function sampleLayer(): LayerEntry[] {
  return [
    { ...BASE, mode: 0o755, path: 'app', type: 'directory' },
    file('app/data.bin', randomBytesFrom(1, 300_000)),
    file('app/readme.txt', 'hello layer\n'.repeat(1000)),
    { ...BASE, path: 'app/current', type: 'symlink', linkTarget: 'data.bin', mode: 0o777 },
    { ...BASE, path: 'etc/removed', type: 'whiteout' },
  ];
}

/** Reproducible pseudo-random bytes, so that two calls describe the same file. */
function randomBytesFrom(seed: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

function sha256sum(path: string): Digest {
  return `sha256:${execFileSync('sha256sum', [path]).toString('ascii').split(' ')[0]}`;
}

function sha256sumOf(bytes: Buffer): Digest {
  return `sha256:${execFileSync('sha256sum', { input: bytes }).toString('ascii').split(' ')[0]}`;
}

const DECOMPRESS: Record<Compression, string[]> = {
  gzip: ['gzip', '-dc'],
  zstd: ['zstd', '-q', '-dc'],
  uncompressed: ['cat'],
};

function decompressed(compression: Compression, path: string): Buffer {
  const [command, ...args] = DECOMPRESS[compression];
  return execFileSync(command!, [...args, path], { maxBuffer: 1 << 28 });
}

function isCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TsbuildError, `expected a TsbuildError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

for (const [compression, mediaType, check] of [
  ['gzip', MediaType.LayerGzip, ['gzip', '-t']],
  ['zstd', MediaType.LayerZstd, ['zstd', '-q', '-t']],
  ['uncompressed', MediaType.Layer, ['tar', '-tf']],
] as const) {
  test(`a ${compression} layer: digest and diff_id match sha256sum of the blob and of its tar`, async () => {
    const store = newStore();
    const result = await writeLayer(sampleLayer(), store, { compression });
    const blob = store.path(result.descriptor.digest);
    execFileSync(check[0], [...check.slice(1), blob]);
    assert.equal(result.descriptor.mediaType, mediaType);
    assert.equal(result.descriptor.digest, sha256sum(blob));
    assert.equal(result.descriptor.size, statSync(blob).size);
    const tar = decompressed(compression, blob);
    assert.equal(result.diffId, sha256sumOf(tar));
    assert.equal(result.uncompressedSize, tar.length);
    if (compression === 'uncompressed') assert.equal(result.diffId, result.descriptor.digest);
    else assert.ok(result.descriptor.size < result.uncompressedSize);
    assert.deepEqual(store.tempFiles(), []);
    // The blob holds the layer: GNU tar extracts the same files.
    const tarPath = join(store.root, 'layer.tar');
    writeFileSync(tarPath, tar);
    const root = mkdtempSync(join(work, 'extract-'));
    execFileSync('tar', ['-xf', tarPath, '-C', root]);
    assert.deepEqual(readFileSync(join(root, 'app/data.bin')), randomBytesFrom(1, 300_000));
    assert.equal(readFileSync(join(root, 'etc/.wh.removed')).length, 0);
  });
}

test('writing the same layer twice gives the same blob, whatever the entry order', async () => {
  for (const compression of ['gzip', 'zstd'] as const) {
    const store = newStore();
    const first = await writeLayer(sampleLayer(), store, { compression, level: 3, sourceDateEpoch: 1_600_000_000 });
    const second = await writeLayer(sampleLayer().reverse(), store, { compression, level: 3, sourceDateEpoch: 1_600_000_000 });
    assert.deepEqual(second, first);
    assert.equal(store.blobs().length, 1);
    assert.deepEqual(store.tempFiles(), []);
  }
});

test('sourceDateEpoch changes the diff_id only through the clamped times', async () => {
  const store = newStore();
  const late = await writeLayer(sampleLayer(), store, { compression: 'gzip', sourceDateEpoch: 1_700_000_000 });
  const unclamped = await writeLayer(sampleLayer(), store, { compression: 'gzip' });
  const clamped = await writeLayer(sampleLayer(), store, { compression: 'gzip', sourceDateEpoch: 1_000 });
  assert.equal(late.diffId, unclamped.diffId, 'an epoch after every mtime changes nothing');
  assert.notEqual(clamped.diffId, unclamped.diffId);
  const listing = execFileSync('tar', ['-tvvzf', store.path(clamped.descriptor.digest), '--full-time'], { env: { ...process.env, TZ: 'UTC' } }).toString();
  for (const line of listing.trimEnd().split('\n')) assert.match(line, / 1970-01-01 00:16:40 /);
});

test('the compression level reaches the compressor', async () => {
  const store = newStore();
  const fast = await writeLayer(sampleLayer(), store, { compression: 'gzip', level: 1 });
  const small = await writeLayer(sampleLayer(), store, { compression: 'gzip', level: 9 });
  assert.equal(fast.diffId, small.diffId);
  assert.notEqual(fast.descriptor.digest, small.descriptor.digest);
  assert.ok(small.descriptor.size <= fast.descriptor.size);
});

test('a failing entry stream leaves no temp file and no blob', async () => {
  const store = newStore();
  async function* failing(): AsyncGenerator<LayerEntry> {
    yield file('a', 'x');
    throw new TsbuildError('INTERNAL', 'the walk failed');
  }
  await assert.rejects(writeLayer(failing(), store, { compression: 'gzip' }), isCode('INTERNAL'));
  assert.deepEqual(store.tempFiles(), []);
  assert.deepEqual(store.blobs(), []);
});

test('a file failing halfway through leaves no temp file and no blob', async () => {
  const store = newStore();
  const broken = file('big', '', {
    size: 1 << 20,
    open: () =>
      Readable.from(
        (async function* () {
          yield randomBytes(256 * 1024);
          throw new Error('read error');
        })(),
      ),
  });
  for (const compression of ['gzip', 'zstd', 'uncompressed'] as const) {
    await assert.rejects(writeLayer([broken], store, { compression }), /read error/);
    assert.deepEqual(store.tempFiles(), []);
    assert.deepEqual(store.blobs(), []);
  }
});

test('a file whose length differs from entry.size fails the layer and leaves nothing behind', async () => {
  const store = newStore();
  const path = join(work, 'resized.bin');
  writeFileSync(path, randomBytes(100_000));
  const described = file('resized.bin', '', { size: statSync(path).size, open: () => createReadStream(path) });
  writeFileSync(path, randomBytes(50_000));
  await assert.rejects(writeLayer([described], store, { compression: 'zstd' }), isCode('TAR_SIZE'));
  writeFileSync(path, randomBytes(150_000));
  await assert.rejects(writeLayer([described], store, { compression: 'gzip' }), isCode('TAR_SIZE'));
  assert.deepEqual(store.tempFiles(), []);
  assert.deepEqual(store.blobs(), []);
});

test('an invalid entry or level fails before anything is stored', async () => {
  const store = newStore();
  await assert.rejects(writeLayer([file('../escape', 'x')], store, { compression: 'gzip' }), isCode('TAR_PATH'));
  let opened = false;
  const watched = file('a', '', {
    size: 0,
    open: () => {
      opened = true;
      return Readable.from([]);
    },
  });
  await assert.rejects(writeLayer([watched], store, { compression: 'gzip', level: 12 }), isCode('COMPRESSION_LEVEL'));
  await assert.rejects(writeLayer([watched], store, { compression: 'uncompressed', level: 1 }), isCode('COMPRESSION_LEVEL'));
  assert.equal(opened, false);
  assert.deepEqual(store.tempFiles(), []);
  assert.deepEqual(store.blobs(), []);
});

test('an empty layer is a valid tar of two zero blocks', async () => {
  const store = newStore();
  const result = await writeLayer([], store, { compression: 'uncompressed' });
  assert.equal(result.uncompressedSize, 1024);
  assert.deepEqual(readFileSync(store.path(result.descriptor.digest)), Buffer.alloc(1024));
});

test('alsoConsume sees the uncompressed tar the layer was made of, and a consumer that fails or stops early is handled', async () => {
  for (const compression of ['gzip', 'uncompressed'] as const) {
    const store = newStore();
    let seen: Buffer | undefined;
    const entries = [...sampleLayer(), file('app/big.bin', randomBytesFrom(2, 3 << 20))];
    const result = await writeLayer(entries, store, {
      compression,
      alsoConsume: async (tar) => {
        const parts: Buffer[] = [];
        for await (const chunk of tar) parts.push(chunk as Buffer);
        seen = Buffer.concat(parts);
      },
    });
    assert.equal(sha256sumOf(seen!), result.diffId, compression);
    assert.ok(decompressed(compression, store.path(result.descriptor.digest)).equals(seen!), compression);

    // A consumer that reads a little and returns: the layer still completes.
    const early = newStore();
    const stopped = await writeLayer(entries, early, {
      compression,
      alsoConsume: async (tar) => {
        for await (const chunk of tar) if ((chunk as Buffer).length > 0) break;
      },
    });
    assert.equal(stopped.diffId, result.diffId);

    const failing = newStore();
    await assert.rejects(
      writeLayer(entries, failing, {
        compression,
        alsoConsume: async (tar) => {
          tar.once('data', () => undefined);
          throw new TsbuildError('INTERNAL', 'unpacking failed');
        },
      }),
      isCode('INTERNAL'),
    );
    assert.deepEqual(failing.tempFiles(), []);
    assert.deepEqual(failing.blobs(), []);
  }
});

test('a small layer, made in memory, has the bytes and digests of the same layer streamed', async () => {
  const text = join(work, 'small-text');
  const random = join(work, 'small-random');
  writeFileSync(text, 'a line of a small step\n'.repeat(2000));
  writeFileSync(random, randomBytes(32 * 1024));
  const onDisk = (path: string, source: string): LayerEntry => ({ ...BASE, path, type: 'file', size: statSync(source).size, openFile: () => openSync(source, 'r') });
  const entries = (): LayerEntry[] => [
    { ...BASE, mode: 0o755, path: 'data', type: 'directory' },
    onDisk('data/text', text),
    onDisk('data/random', random),
    { ...BASE, path: 'data/gone', type: 'whiteout' },
  ];
  async function* streamed(): AsyncGenerator<LayerEntry> {
    yield* entries();
  }
  for (const options of [{ compression: 'gzip' }, { compression: 'gzip', level: 9 }, { compression: 'uncompressed' }] as const) {
    const store = newStore();
    const inMemory = await writeLayer(entries(), store, options);
    assert.deepEqual(await writeLayer(streamed(), store, options), inMemory);
    assert.equal(store.blobs().length, 1);
    assert.equal(inMemory.descriptor.digest, sha256sum(store.path(inMemory.descriptor.digest)));
    assert.equal(inMemory.diffId, sha256sumOf(decompressed(options.compression, store.path(inMemory.descriptor.digest))));
  }
  const store = newStore();
  await assert.rejects(writeLayer(entries(), store, { compression: 'gzip', level: 10 }), isCode('COMPRESSION_LEVEL'));
  assert.deepEqual(store.blobs(), []);
});
