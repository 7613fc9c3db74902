import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { TsbuildError } from './errors.js';
import type { Digest } from './types.js';

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** Checks that `s` is `sha256:` followed by 64 lowercase hex digits. */
export function parseDigest(s: string): Digest {
  if (!DIGEST_PATTERN.test(s)) {
    throw new TsbuildError('DIGEST', `invalid digest ${JSON.stringify(s)}: expected sha256: and 64 lowercase hex digits`);
  }
  return s as Digest;
}

export function sha256Digest(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The SHA-256 and length of everything `source` yields, read as it streams. */
export async function digestOfStream(source: AsyncIterable<Uint8Array>): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** Bytes read at a time by `digestOfPath`. */
const FILE_READ_BYTES = 1024 * 1024;

/**
 * The SHA-256 and length of the file at `path`, read into one buffer reused for the whole file:
 * a stream would allocate a new buffer per read, and hashing a large blob would leave tens of MiB
 * of them for the collector.
 */
export async function digestOfPath(path: string): Promise<{ digest: Digest; size: number }> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(FILE_READ_BYTES);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, FILE_READ_BYTES, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { digest: `sha256:${hash.digest('hex')}`, size };
  } finally {
    await handle.close();
  }
}

/** Passes bytes through unchanged while hashing them; `digest` and `size` describe everything that passed. */
export class DigestStream extends Transform {
  #hash: Hash = createHash('sha256');
  #digest: Digest | undefined;
  #size = 0;

  /** Bytes seen so far. */
  get size(): number {
    return this.#size;
  }

  /** The SHA-256 of all bytes; available once the stream has flushed. */
  get digest(): Digest {
    if (this.#digest === undefined) throw new Error('digest read before the stream ended');
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#size += chunk.length;
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = `sha256:${this.#hash.digest('hex')}`;
    callback();
  }
}

/**
 * A DigestStream that fails unless exactly `expectedSize` bytes with digest `expected` pass:
 * as soon as too many bytes arrive, or at the end for a short stream or a wrong digest.
 */
export class VerifyingStream extends DigestStream {
  readonly #expected: Digest;
  readonly #expectedSize: number;

  constructor(expected: Digest, expectedSize: number) {
    super();
    this.#expected = parseDigest(expected);
    if (!Number.isSafeInteger(expectedSize) || expectedSize < 0) {
      throw new TsbuildError('DIGEST', `invalid expected size ${expectedSize} for ${expected}`);
    }
    this.#expectedSize = expectedSize;
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.size + chunk.length > this.#expectedSize) {
      callback(new TsbuildError('SIZE_MISMATCH', `content of ${this.#expected} is larger than the expected ${this.#expectedSize} bytes`));
      return;
    }
    super._transform(chunk, encoding, callback);
  }

  override _flush(callback: TransformCallback): void {
    super._flush((error) => {
      if (error) callback(error);
      else if (this.size !== this.#expectedSize) {
        callback(new TsbuildError('SIZE_MISMATCH', `content of ${this.#expected} is ${this.size} bytes, expected ${this.#expectedSize}`));
      } else if (this.digest !== this.#expected) {
        callback(new TsbuildError('DIGEST_MISMATCH', `content has digest ${this.digest}, expected ${this.#expected}`));
      } else callback();
    });
  }
}
