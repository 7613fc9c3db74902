import { createReadStream } from 'node:fs';
import type { Layer, LayerOrigin } from '../../layers/image.js';
import { blobLayer } from '../../layers/lazy-image.js';
import type { Descriptor, Digest } from '../../layers/types.js';

/** A layer of an image being built: its blob descriptor, diff_id, and the file that holds the blob. */
export interface ImageLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  /** The blob's file; a base image's layer may be fetched into the image cache on the first call. */
  blobPath(): Promise<string>;
}

/** The layer in the image model, its blob read from its file; `origin` says which repository holds a base image's layer. */
export function modelLayer(layer: ImageLayer, origin?: LayerOrigin): Layer {
  return blobLayer({
    descriptor: layer.descriptor,
    diffId: layer.diffId,
    open: async () => createReadStream(await layer.blobPath()),
    localPath: () => layer.blobPath(),
    ...(origin !== undefined && { origin }),
  });
}

/** A layer whose blob is already a file, such as one a step just wrote. */
export function fileLayer(descriptor: Descriptor, diffId: Digest, path: string): ImageLayer {
  return { descriptor, diffId, blobPath: async () => path };
}
