import { createReadStream } from 'node:fs';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream } from '../../layers/compression.js';
import type { ImageLayer } from './image-layer.js';

/** Applies layers in order to an existing (empty or partly built) root filesystem directory. */
export async function applyLayers(rootfs: string, layers: readonly ImageLayer[]): Promise<void> {
  for (const layer of layers) {
    const tar = await decompressStream(createReadStream(layer.blobPath));
    await applyLayer(rootfs, tar);
  }
}
