import { rm } from 'node:fs/promises';
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
    let blob = diff;
    if (options.compression === 'uncompressed') {
      await pipeline(tar, diff, compressor, file);
    } else {
      blob = new DigestStream();
      await pipeline(tar, diff, compressor, blob, file);
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
