import { pipeline } from 'node:stream/promises';
import { sha256Digest, VerifyingStream } from '../layers/digest.js';
import { TsbuildError } from '../layers/errors.js';
import { openWriteStream, removeIfExists } from '../layers/fs-util.js';
import { OciLayout } from '../layers/oci-layout.js';
import { drainedOrClosed } from '../layers/stream-util.js';
import type { Descriptor, Digest } from '../layers/types.js';

/** One response body of a ranged fetch, and the offset of the blob at which it starts. */
export interface RangedBody {
  /** 0 when the server ignored the range and sends the whole blob again. */
  start: number;
  body: AsyncIterable<Uint8Array>;
}

export interface DownloadOptions {
  /** Opens the blob from `offset` (a Range request when offset > 0). */
  open: (offset: number) => Promise<RangedBody>;
  /** How many times a body that broke off is resumed; default 5. */
  resumes?: number;
  /** Tells whether a failure while reading a body may be resumed; others are thrown at once. */
  resumable: (error: unknown) => boolean;
  /** Called after each chunk with the bytes received so far. */
  onBytes?: (bytes: number) => void;
  /** Called when a broken body is resumed, with the offset it resumes from. */
  onResume?: (offset: number) => void;
  /** Names the blob in error messages, e.g. `registry/repo@sha256:…`. */
  label: string;
}

/**
 * A content-addressed cache of registry blobs and manifests: an OCI layout, so that the builder reads
 * pulled images with `readLayoutImage`. Nothing enters it before its size and digest are verified:
 * downloads go to a temp file that is renamed into place only after verification.
 */
export class BlobCache {
  readonly layout: OciLayout;

  private constructor(layout: OciLayout) {
    this.layout = layout;
  }

  /** Opens the cache at `dir`, creating it as an OCI layout when missing. */
  static async open(dir: string): Promise<BlobCache> {
    return new BlobCache(await OciLayout.open(dir, { create: true }));
  }

  get dir(): string {
    return this.layout.dir;
  }

  has(digest: Digest): Promise<boolean> {
    return this.layout.has(digest);
  }

  /** A cached document (manifest, index, config), verified; undefined when not cached. */
  async read(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer | undefined> {
    if (!(await this.layout.has(descriptor.digest))) return undefined;
    const bytes = await this.layout.readBlob(descriptor.digest);
    if (bytes.length !== descriptor.size) {
      throw new TsbuildError('LAYOUT', `cached blob ${descriptor.digest} in ${this.dir} has ${bytes.length} bytes, expected ${descriptor.size}`);
    }
    return bytes;
  }

  /** Stores a document received whole, after checking it is exactly `expected`. */
  async store(bytes: Buffer, expected: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>, label: string): Promise<void> {
    checkContent(bytes, expected, label);
    await this.layout.writeBlob(bytes, expected.mediaType);
  }

  /**
   * Downloads a blob into the cache, verifying size and digest as the bytes stream in. A body that
   * breaks off is resumed from the bytes already received (or started over when the server ignores
   * the range). On any failure the temp file is removed and nothing is cached.
   */
  async download(descriptor: Pick<Descriptor, 'digest' | 'size'>, options: DownloadOptions): Promise<void> {
    if (await this.layout.has(descriptor.digest)) return;
    const temp = await this.layout.tempPath();
    try {
      await this.#fetchInto(temp, descriptor, options);
      await this.layout.commit(temp, descriptor.digest);
    } finally {
      await removeIfExists(temp);
    }
  }

  async #fetchInto(temp: string, descriptor: Pick<Descriptor, 'digest' | 'size'>, options: DownloadOptions): Promise<void> {
    const maxResumes = options.resumes ?? 5;
    let verifier = new VerifyingStream(descriptor.digest, descriptor.size);
    let written = pipeline(verifier, await openWriteStream(temp));
    let received = 0;
    for (let resumes = 0; ; resumes++) {
      const { start, body } = await options.open(received);
      if (start !== received) {
        // The server sends the whole blob again: start the file and the digest over.
        verifier.destroy();
        await written.catch(() => undefined);
        verifier = new VerifyingStream(descriptor.digest, descriptor.size);
        written = pipeline(verifier, await openWriteStream(temp));
        received = 0;
      }
      let broken: unknown;
      try {
        for await (const chunk of body) {
          if (verifier.destroyed) break;
          received += chunk.length;
          if (!verifier.write(chunk)) await drainedOrClosed(verifier);
          options.onBytes?.(received);
        }
      } catch (error) {
        broken = error;
      }
      if (verifier.destroyed) break; // the verifier failed: its error comes out of `written`
      if (broken === undefined && received >= descriptor.size) break;
      if (broken !== undefined && !options.resumable(broken)) {
        verifier.destroy();
        await written.catch(() => undefined);
        throw broken;
      }
      if (resumes >= maxResumes) {
        verifier.destroy();
        await written.catch(() => undefined);
        const why = broken instanceof Error ? broken.message : `the body ended after ${received} of ${descriptor.size} bytes`;
        throw new TsbuildError('CONNECTION', `connection: download of ${options.label} broke off ${maxResumes + 1} times, last: ${why}`);
      }
      options.onResume?.(received);
    }
    if (!verifier.destroyed) verifier.end();
    try {
      await written;
    } catch (error) {
      if (error instanceof TsbuildError && (error.code === 'DIGEST_MISMATCH' || error.code === 'SIZE_MISMATCH')) {
        throw new TsbuildError(error.code, `${options.label} failed verification: ${error.message}; nothing was cached`, { cause: error });
      }
      throw error;
    }
  }
}

/** Throws unless `bytes` have the expected size and digest. */
export function checkContent(bytes: Buffer, expected: Pick<Descriptor, 'digest' | 'size'>, label: string): void {
  if (bytes.length !== expected.size) {
    throw new TsbuildError('SIZE_MISMATCH', `${label} failed verification: ${bytes.length} bytes, expected ${expected.size}; nothing was cached`);
  }
  const digest = sha256Digest(bytes);
  if (digest !== expected.digest) {
    throw new TsbuildError('DIGEST_MISMATCH', `${label} failed verification: content has digest ${digest}, expected ${expected.digest}; nothing was cached`);
  }
}
