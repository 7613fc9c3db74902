import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from './blob-store.js';
import { ChunkPool } from './chunk-filler.js';
import { compressStream, inMemoryCompressor, layerMediaType, type Compression } from './compression.js';
import { DigestStream, sha256Digest } from './digest.js';
import type { LayerEntry } from './entry.js';
import { openWriteStream } from './fs-util.js';
import { layerTar, layerTarBytes } from './tar-writer.js';
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
 * tar → diff_id hash → compression → digest hash → temp file → commit; a small layer is made in
 * memory instead (see IN_MEMORY_TAR_BYTES), to the same bytes.
 * On any failure the temp file is removed and nothing is committed.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  store: BlobStore,
  options: LayerOptions,
): Promise<LayerResult> {
  const inMemory = options.alsoConsume || options.compression === 'zstd' ? undefined : options.compression;
  if (inMemory && fitsInMemory(entries)) return writeInMemory(entries, store, { ...options, compression: inMemory });
  const tempPath = await store.tempPath();
  try {
    // Tar chunks are reused once gzip, and the side consumer if any, are done with them; the
    // hashing stage reads them synchronously before passing them on, and other formats hand them
    // to code that does not say when it is done.
    const pool = options.compression === 'gzip' ? new ChunkPool(options.alsoConsume ? 2 : 1) : undefined;
    const doneWith = pool ? (chunk: Buffer): void => pool.giveBack(chunk) : undefined;
    // Created first: it rejects a bad level before the tar starts reading files.
    const compressor = compressStream(options.compression, options.level, doneWith);
    const tar = layerTar(entries, { sourceDateEpoch: options.sourceDateEpoch, ...(pool ? { pool } : {}) });
    const diff = new DigestStream();
    const file = await openWriteStream(tempPath);
    const blob = options.compression === 'uncompressed' ? diff : new DigestStream();
    const side = options.alsoConsume ? new PassThrough({ highWaterMark: SIDE_BUFFER_BYTES }) : undefined;
    // The consumer may have stopped listening by the time the layer fails; its error is reported by `written`.
    side?.on('error', () => undefined);
    const stages = [tar, diff, ...(side ? [new Tee(side, doneWith)] : []), compressor, ...(blob === diff ? [] : [blob]), file];
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

/**
 * The most a layer's tar may hold to be made in memory: a small RUN step's layer then costs a
 * fraction of a millisecond instead of the stream stages' ~4 ms, and the thread is never held
 * for more than a couple of milliseconds.
 */
const IN_MEMORY_TAR_BYTES = 256 * 1024;

/** Whether `entries` make a tar of at most IN_MEMORY_TAR_BYTES (headers counted as one block each), every file read through a descriptor. */
function fitsInMemory(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>): entries is readonly LayerEntry[] {
  if (!Array.isArray(entries)) return false;
  let bytes = 0;
  for (const entry of entries as readonly LayerEntry[]) {
    if (entry.type === 'file' && !entry.openFile && entry.open) return false;
    bytes += 512 + (entry.type === 'file' ? entry.size ?? 0 : 0);
    if (bytes > IN_MEMORY_TAR_BYTES) return false;
  }
  return true;
}

/** The layer made in memory and written in one go. */
async function writeInMemory(entries: readonly LayerEntry[], store: BlobStore, options: LayerOptions & { compression: Exclude<Compression, 'zstd'> }): Promise<LayerResult> {
  const compress = inMemoryCompressor(options.compression, options.level);
  const tar = layerTarBytes(entries, { sourceDateEpoch: options.sourceDateEpoch });
  const blob = compress(tar);
  const digest = sha256Digest(blob);
  const tempPath = await store.tempPath();
  try {
    writeFileSync(tempPath, blob, { flag: 'wx' });
    await store.commit(tempPath, digest);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
  return { descriptor: { mediaType: layerMediaType(options.compression), digest, size: blob.length }, diffId: sha256Digest(tar), uncompressedSize: tar.length };
}

/** What the side consumer of `alsoConsume` may lag behind the layer. */
const SIDE_BUFFER_BYTES = 1024 * 1024;

/**
 * How far the side consumer must have read past a chunk before the chunk counts as done with: it
 * reads a chunk only once it has processed the previous one, and a tar reader keeps no more than
 * a partial block and the current entry's unread data, well within this.
 */
const SIDE_LAG_BYTES = 4 * 1024 * 1024;

/**
 * Passes bytes on unchanged and writes them to `side` too, going no faster than `side` drains;
 * ends `side` at the end. `doneWith` hears of each chunk once the side has read far enough past it.
 */
class Tee extends Transform {
  readonly #lent: Array<{ chunk: Buffer; end: number }> = [];
  #written = 0;

  constructor(private readonly side: PassThrough, private readonly doneWith?: (chunk: Buffer) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.push(chunk);
    const flowing = this.side.write(chunk);
    this.#lend(chunk);
    if (flowing || this.side.destroyed) callback();
    else this.waitForSide(callback);
  }

  override _flush(callback: TransformCallback): void {
    this.side.end();
    callback();
  }

  /** Records `chunk` as given to the side, and reports the chunks the side has read far enough past. */
  #lend(chunk: Buffer): void {
    if (!this.doneWith) return;
    this.#written += chunk.length;
    this.#lent.push({ chunk, end: this.#written });
    // What a PassThrough holds is what its reader has not taken yet.
    const read = this.#written - this.side.writableLength - this.side.readableLength;
    while (this.#lent.length > 0 && this.#lent[0]!.end + SIDE_LAG_BYTES <= read) this.doneWith(this.#lent.shift()!.chunk);
  }

  private waitForSide(callback: TransformCallback): void {
    const done = (): void => {
      this.side.off('drain', done).off('close', done);
      callback(this.side.destroyed && !this.side.writableFinished ? this.side.errored ?? new Error('the layer consumer stopped') : undefined);
    };
    this.side.on('drain', done).on('close', done);
  }
}
