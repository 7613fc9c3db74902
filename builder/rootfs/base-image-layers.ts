import { TsbuildError } from '../../layers/errors.js';
import type { Image, Layer } from '../../layers/image.js';
import { memo } from '../../layers/memo.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import { forEachLimited } from '../../layers/concurrency.js';
import type { ImageLayer } from '../model/image-layer.js';

/** How many of a base image's layer blobs are fetched at once. */
const PREFETCH = 4;

/**
 * The layers of a base image, known from its manifest and config alone. No blob is read until a
 * step needs one; then all of the image's blobs are fetched, a few at a time, since a root
 * filesystem needs every layer below the top.
 */
export function baseImageLayers(image: Image, descriptors: readonly Descriptor[], diffIds: readonly Digest[]): ImageLayer[] {
  const files = memo(async () => {
    const layers = await image.layers();
    const paths = new Map<Layer, string>();
    await forEachLimited(layers, PREFETCH, async (layer) => {
      paths.set(layer, await localFile(layer));
    });
    return layers.map((layer) => paths.get(layer)!);
  });
  return descriptors.map((descriptor, i) => ({ descriptor, diffId: diffIds[i]!, blobPath: async () => (await files())[i]! }));
}

async function localFile(layer: Layer): Promise<string> {
  const path = await layer.localPath?.();
  if (path === undefined) throw new TsbuildError('INTERNAL', `layer ${await layer.digest()} has no local file`);
  return path;
}

