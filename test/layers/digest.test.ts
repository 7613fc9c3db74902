import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { DigestStream, VerifyingStream, parseDigest, sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import type { Digest } from '../../layers/types.js';

/** The digest the system's sha256sum computes for `bytes`. */
function sha256sum(bytes: Buffer): Digest {
  const line = execFileSync('sha256sum', { input: bytes }).toString('ascii');
  return `sha256:${line.split(' ')[0]}`;
}

function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return chunks;
}

/** Collects what a stream passes on. */
function collector(): { sink: Writable; bytes: () => Buffer } {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      parts.push(chunk);
      callback();
    },
  });
  return { sink, bytes: () => Buffer.concat(parts) };
}

function isCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TsbuildError, `expected a TsbuildError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

test('parseDigest accepts sha256 with 64 lowercase hex digits', () => {
  const digest = sha256sum(Buffer.from('x'));
  assert.equal(parseDigest(digest), digest);
});

test('parseDigest rejects other algorithms, case, lengths and surrounding text', () => {
  const hex = sha256sum(Buffer.from('x')).slice('sha256:'.length);
  for (const bad of [
    hex,
    `sha512:${hex}`,
    `sha256:${hex.toUpperCase()}`,
    `sha256:${hex.slice(1)}`,
    `sha256:${hex}0`,
    ` sha256:${hex}`,
    `sha256:${hex}\n`,
    `sha256:${hex.slice(1)}g`,
  ]) {
    assert.throws(() => parseDigest(bad), isCode('DIGEST'), bad);
  }
});

test('sha256Digest agrees with sha256sum, for bytes and for text', () => {
  const bytes = randomBytes(3000);
  assert.equal(sha256Digest(bytes), sha256sum(bytes));
  assert.equal(sha256Digest('héllo'), sha256sum(Buffer.from('héllo', 'utf8')));
  assert.equal(sha256Digest(Buffer.alloc(0)), sha256sum(Buffer.alloc(0)));
});

test('DigestStream passes bytes through unchanged and reports their digest and count', async () => {
  const bytes = randomBytes(200_000);
  const hashing = new DigestStream();
  const out = collector();
  await pipeline(Readable.from(chunksOf(bytes, 7_777)), hashing, out.sink);
  assert.deepEqual(out.bytes(), bytes);
  assert.equal(hashing.digest, sha256sum(bytes));
  assert.equal(hashing.size, bytes.length);
});

test('DigestStream of an empty stream', async () => {
  const hashing = new DigestStream();
  await pipeline(Readable.from([]), hashing, collector().sink);
  assert.equal(hashing.digest, sha256sum(Buffer.alloc(0)));
  assert.equal(hashing.size, 0);
});

test('DigestStream refuses to give a digest before the end', () => {
  const hashing = new DigestStream();
  hashing.write(Buffer.from('partial'));
  assert.throws(() => hashing.digest);
  hashing.destroy();
});

test('VerifyingStream lets matching content through', async () => {
  const bytes = randomBytes(50_000);
  const out = collector();
  await pipeline(Readable.from(chunksOf(bytes, 4096)), new VerifyingStream(sha256sum(bytes), bytes.length), out.sink);
  assert.deepEqual(out.bytes(), bytes);
});

test('VerifyingStream fails at the end when the digest differs', async () => {
  const bytes = randomBytes(10_000);
  const other = Buffer.from(bytes);
  other[5_000] ^= 1;
  await assert.rejects(
    pipeline(Readable.from(chunksOf(other, 1000)), new VerifyingStream(sha256sum(bytes), bytes.length), collector().sink),
    isCode('DIGEST_MISMATCH'),
  );
});

test('VerifyingStream fails at the end when content is short', async () => {
  const bytes = randomBytes(10_000);
  await assert.rejects(
    pipeline(Readable.from([bytes.subarray(0, 9_999)]), new VerifyingStream(sha256sum(bytes), bytes.length), collector().sink),
    isCode('SIZE_MISMATCH'),
  );
});

test('VerifyingStream fails as soon as content overflows, without passing the excess on', async () => {
  const bytes = randomBytes(10_000);
  let produced = 0;
  async function* endless(): AsyncGenerator<Buffer> {
    for (;;) {
      produced += 1000;
      yield bytes.subarray(0, 1000);
    }
  }
  const out = collector();
  await assert.rejects(pipeline(Readable.from(endless()), new VerifyingStream(sha256sum(bytes), 4_500), out.sink), isCode('SIZE_MISMATCH'));
  assert.ok(out.bytes().length <= 4_500, `passed on ${out.bytes().length} bytes`);
  assert.ok(produced < 100_000, `read ${produced} bytes before failing`);
});

test('VerifyingStream rejects a malformed expected digest or size', () => {
  assert.throws(() => new VerifyingStream('sha256:abc' as Digest, 1), isCode('DIGEST'));
  assert.throws(() => new VerifyingStream(sha256sum(Buffer.alloc(0)), -1), isCode('DIGEST'));
});
