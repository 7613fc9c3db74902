import { createReadStream } from 'node:fs';
import { TsbuildError } from '../../layers/errors.js';
import type { Image, Layer } from '../../layers/image.js';
import { blobLayer } from '../../layers/lazy-image.js';
import { memo } from '../../layers/memo.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import { forEachLimited } from '../../registry-client/concurrency.js';

/** A layer of an image being built: its blob descriptor, diff_id, and the file that holds the blob. */
export interface ImageLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  /** The blob's file; a base image's layer is fetched into the image cache on the first call. */
  blobPath(): Promise<string>;
}

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

/** The layer in the image model, its blob read from its file. */
export function modelLayer(layer: ImageLayer): Layer {
  return blobLayer({
    descriptor: layer.descriptor,
    diffId: layer.diffId,
    open: async () => createReadStream(await layer.blobPath()),
    localPath: () => layer.blobPath(),
  });
}

/** A layer whose blob is already a file, such as one a step just wrote. */
export function fileLayer(descriptor: Descriptor, diffId: Digest, path: string): ImageLayer {
  return { descriptor, diffId, blobPath: async () => path };
}
