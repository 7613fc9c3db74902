import { createReadStream } from 'node:fs';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream } from '../../layers/compression.js';
import { TsbuildError } from '../../layers/errors.js';
import type { ImageLayer } from '../model/image-layer.js';

/** Applies layers in order to an existing (empty or partly built) root filesystem directory. */
export async function applyLayers(rootfs: string, layers: readonly ImageLayer[]): Promise<void> {
  for (const layer of layers) {
    const tar = await decompressStream(createReadStream(await layer.blobPath()));
    await namingLayer(layer, () => applyLayer(rootfs, tar));
  }
}

/** Runs `apply` for `layer`, so that a broken or hostile tar is reported with the layer's digest. */
export async function namingLayer<T>(layer: ImageLayer, apply: () => Promise<T>): Promise<T> {
  try {
    return await apply();
  } catch (error) {
    if (error instanceof TsbuildError && error.code === 'INVALID_LAYER') {
      throw new TsbuildError('INVALID_LAYER', `invalid layer ${layer.descriptor.digest}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
