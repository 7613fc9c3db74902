import type { Image } from '../layers/image.js';
import { selectPlatform } from '../layers/select-platform.js';
import type { Descriptor, Platform } from '../layers/types.js';
import type { BlobCache } from './blob-cache.js';
import { forEachLimited } from '../layers/concurrency.js';
import { formatReference, type ImageReference } from './reference.js';
import { resolveRemote, type RemoteOptions } from './remote-image.js';

export interface RemoteImageOptions extends RemoteOptions {
  /** The platform to select from a multi-platform image. */
  platform: Platform;
}

export interface PullOptions extends RemoteImageOptions {
  /** Layers downloaded at once; default 4. */
  concurrency?: number;
}

/** One platform's image of a reference, and where it came from. */
export interface RemoteImage {
  readonly image: Image;
  /** What the reference resolved to: an index or a manifest (then the image's own). */
  readonly root: Descriptor;
  /** The full reference, e.g. `registry.example.com/team/app:1`. */
  readonly refName: string;
  /** Where the image's blobs are kept once fetched. */
  readonly cache: BlobCache;
}

/**
 * One platform's image of `ref`, lazily: its manifest and config are fetched (unless cached), its
 * layers only when they are read.
 */
export async function remoteImage(ref: ImageReference, options: RemoteImageOptions): Promise<RemoteImage> {
  const refName = formatReference(ref);
  const root = await resolveRemote(ref, options);
  const image = await selectPlatform(root.item, options.platform, refName, 'MANIFEST_INVALID');
  await image.config();
  return { image, root: root.descriptor, refName, cache: root.cache };
}

/**
 * Pulls one platform's image into the cache and lists it there under its full reference: resolves
 * the reference, selects the platform, and downloads config and layers, verifying each as it
 * streams. Blobs already cached cost no network I/O.
 */
export async function pullImage(ref: ImageReference, options: PullOptions): Promise<RemoteImage> {
  const pulled = await remoteImage(ref, options);
  const layers = await pulled.image.layers();
  await forEachLimited(layers, options.concurrency ?? 4, async (layer) => {
    await layer.localPath?.();
  });
  await pulled.cache.layout.addImage(pulled.root, [pulled.refName]);
  return pulled;
}
