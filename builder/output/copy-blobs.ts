import { storeLayer } from '../../layers/layout-write.js';
import { modelLayer } from '../model/image-layer.js';
import type { Workspace } from '../workspace/workspace.js';
import type { BuildArtifact } from './exporter.js';

/**
 * Gathers every blob of the artifact into the work layout, so each exporter reads from one place.
 * Blobs come from content-addressed stores that verified them on the way in (the image cache, the
 * step cache, the layers the build wrote), so each is hard-linked, or copied across file systems,
 * and checked for size: a base layer of tens of MiB is not read and hashed again.
 */
export async function gatherBlobs(artifact: BuildArtifact, workspace: Workspace): Promise<void> {
  for (const image of artifact.images) {
    for (const layer of image.layers) await storeLayer(workspace.layout, modelLayer(layer));
  }
}
