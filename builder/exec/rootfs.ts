import { createReadStream } from 'node:fs';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream } from '../../layers/compression.js';
import type { ImageLayer } from './image-layer.js';
import type { RootfsPreparer } from './stage-run.js';
import type { Workspace } from './workspace.js';

/** Applies layers in order to an existing (empty or partly built) root filesystem directory. */
export async function applyLayers(rootfs: string, layers: readonly ImageLayer[]): Promise<void> {
  for (const layer of layers) {
    const tar = await decompressStream(createReadStream(layer.blobPath));
    await applyLayer(rootfs, tar);
  }
}

/** Prepares each rootfs as a fresh directory in the workspace with every layer applied. */
export function unpackingPreparer(workspace: Workspace): RootfsPreparer {
  return async (layers) => {
    const dir = await workspace.newDir('rootfs');
    await applyLayers(dir, layers);
    return { dir, release: async () => {} };
  };
}
