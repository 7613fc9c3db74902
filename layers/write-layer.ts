import { rm } from 'node:fs/promises';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from './blob-store.js';
import { compressStream, layerMediaType, type Compression } from './compression.js';
import { DigestStream } from './digest.js';
import type { LayerEntry } from './entry.js';
import { openWriteStream } from './fs-util.js';
import { layerTar } from './tar-writer.js';
import type { Descriptor, Digest } from './types.js';

export interface LayerOptions {
  compression: Compression;
  /** Compression level; each format's default when absent. */
  level?: number;
  /** Clamp every mtime to this many seconds since the epoch. */
  sourceDateEpoch?: number;
  /**
   * Also given the uncompressed tar as it is written, for example to unpack it at the same time:
   * the layer fails if this fails, and this sees an error if the layer fails.
   */
  alsoConsume?: (tar: Readable) => Promise<unknown>;
}

export interface LayerResult {
  /** The stored blob: compressed layer, its digest and size. */
  descriptor: Descriptor;
  /** SHA-256 of the uncompressed tar, for the image config's rootfs.diff_ids. */
  diffId: Digest;
  uncompressedSize: number;
}

/**
 * Writes `entries` as a layer blob into `store` in one streaming pass:
 * tar → diff_id hash → compression → digest hash → temp file → commit.
 * On any failure the temp file is removed and nothing is committed.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  store: BlobStore,
  options: LayerOptions,
): Promise<LayerResult> {
  const tempPath = await store.tempPath();
  try {
    // Created first: it rejects a bad level before the tar starts reading files.
    const compressor = compressStream(options.compression, options.level);
    const tar = layerTar(entries, { sourceDateEpoch: options.sourceDateEpoch });
    const diff = new DigestStream();
    const file = await openWriteStream(tempPath);
    const blob = options.compression === 'uncompressed' ? diff : new DigestStream();
    const side = options.alsoConsume ? new PassThrough({ highWaterMark: SIDE_BUFFER_BYTES }) : undefined;
    // The consumer may have stopped listening by the time the layer fails; its error is reported by `written`.
    side?.on('error', () => undefined);
    const stages = [tar, diff, ...(side ? [new Tee(side)] : []), compressor, ...(blob === diff ? [] : [blob]), file];
    const written = pipeline(stages);
    if (side) {
      // A consumer may stop reading at the archive's end marker; what follows is drained, so the layer never waits on it.
      const consumed = options.alsoConsume!(side).then(() => void side.resume());
      // Whichever fails first stops the other; both are awaited, so nothing is left running.
      written.catch((error: unknown) => side.destroy(error as Error));
      consumed.catch((error: unknown) => tar.destroy(error as Error));
      await Promise.all([written, consumed]);
    } else {
      await written;
    }
    await store.commit(tempPath, blob.digest);
    return {
      descriptor: { mediaType: layerMediaType(options.compression), digest: blob.digest, size: blob.size },
      diffId: diff.digest,
      uncompressedSize: diff.size,
    };
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

/** What the side consumer of `alsoConsume` may lag behind the layer. */
const SIDE_BUFFER_BYTES = 1024 * 1024;

/** Passes bytes on unchanged and writes them to `side` too, going no faster than `side` drains; ends `side` at the end. */
class Tee extends Transform {
  constructor(private readonly side: PassThrough) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.push(chunk);
    if (this.side.write(chunk) || this.side.destroyed) callback();
    else this.waitForSide(callback);
  }

  override _flush(callback: TransformCallback): void {
    this.side.end();
    callback();
  }

  private waitForSide(callback: TransformCallback): void {
    const done = (): void => {
      this.side.off('drain', done).off('close', done);
      callback(this.side.destroyed && !this.side.writableFinished ? this.side.errored ?? new Error('the layer consumer stopped') : undefined);
    };
    this.side.on('drain', done).on('close', done);
  }
}
