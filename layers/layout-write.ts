import { linkSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from './blob-store.js';
import { forEachLimited } from './concurrency.js';
import { VerifyingStream } from './digest.js';
import { TsbuildError } from './errors.js';
import { openWriteStream, removeIfExists } from './fs-util.js';
import type { Image, ImageIndex, ImageOrIndex, Layer } from './image.js';
import type { OciLayout } from './oci-layout.js';
import { indexEntry } from './select-platform.js';
import type { Descriptor } from './types.js';

/**
 * Stores an image or index and everything it references in `layout`, children before parents, and
 * returns its descriptor. Blobs already there are skipped; the others are written to a temp file
 * and renamed into place, so readers never see half a blob. `index.json` is left alone: tag the
 * result with `layout.addImage`.
 */
export async function writeToLayout(layout: OciLayout, item: ImageOrIndex): Promise<Descriptor> {
  return item.kind === 'image' ? writeImage(layout, item.image) : writeIndex(layout, item.index);
}

export async function writeImage(layout: OciLayout, image: Image): Promise<Descriptor> {
  const manifest = await image.manifest();
  const config = await layout.writeBlob(await image.rawConfig(), manifest.config.mediaType);
  if (config.digest !== manifest.config.digest) {
    throw new TsbuildError('LAYOUT', `config ${manifest.config.digest} has other content (${config.digest}); not written`);
  }
  await forEachLimited(await image.layers(), PARALLEL_LAYERS, (layer) => storeLayer(layout, layer));
  return storeDocument(layout, image);
}

/** Layers stored at once: a link and a sync each wait on the disk, and a layer without a local file is streamed. */
const PARALLEL_LAYERS = 4;

export async function writeIndex(layout: OciLayout, index: ImageIndex): Promise<Descriptor> {
  for (const entry of (await index.indexManifest()).manifests) await writeToLayout(layout, await indexEntry(index, entry, 'LAYOUT'));
  return storeDocument(layout, index);
}

async function storeDocument(layout: OciLayout, item: Image | ImageIndex): Promise<Descriptor> {
  const stored = await layout.writeBlob(await item.rawManifest(), await item.mediaType());
  const expected = await item.digest();
  if (stored.digest !== expected) throw new TsbuildError('LAYOUT', `manifest ${expected} has other content (${stored.digest}); not written`);
  return stored;
}

/**
 * Brings a layer blob into `store` unless it is there: a hard link (or a copy across file systems)
 * of the layer's local file when it has one, else its stream, checked against digest and size.
 * The link and the size check take microseconds and are made at once; a copy waits off the thread.
 */
export async function storeLayer(store: BlobStore, layer: Layer): Promise<void> {
  const { digest, size } = await layer.descriptor();
  if (await store.has(digest)) return;
  const temp = await store.tempPath();
  try {
    const local = await layer.localPath?.();
    if (local !== undefined) {
      if (!linked(local, temp)) await copyFile(local, temp);
      const actual = statSync(temp).size;
      if (actual !== size) throw new TsbuildError('SIZE_MISMATCH', `layer file ${local} has ${actual} bytes, expected ${size} for ${digest}`);
    } else {
      await pipeline(await layer.compressed(), new VerifyingStream(digest, size), await openWriteStream(temp));
    }
    await store.commit(temp, digest);
  } catch (error) {
    // A committed temp file is gone; one left by a failure may be a whole copied layer.
    await removeIfExists(temp);
    throw error;
  }
}

/** Hard-links `from` at `to`; false when it cannot be (another file system, links not allowed), for a copy to be made instead. */
function linked(from: string, to: string): boolean {
  try {
    linkSync(from, to);
    return true;
  } catch {
    return false;
  }
}
