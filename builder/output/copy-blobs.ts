import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '../../layers/blob-store.js';
import { VerifyingStream } from '../../layers/digest.js';
import { openWriteStream } from '../../layers/fs-util.js';
import type { Descriptor } from '../../layers/types.js';
import type { Workspace } from '../workspace/workspace.js';
import type { BuildArtifact } from './exporter.js';

/** Copies a blob into `store` from a file, unless it is there already, verified against its descriptor. */
async function importBlob(store: BlobStore, descriptor: Descriptor, sourcePath: string): Promise<void> {
  if (await store.has(descriptor.digest)) return;
  const temp = await store.tempPath();
  try {
    await pipeline(createReadStream(sourcePath), new VerifyingStream(descriptor.digest, descriptor.size), await openWriteStream(temp));
    await store.commit(temp, descriptor.digest);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/**
 * Gathers every blob of the artifact into the work layout (base layers come from their own
 * layouts, verified), so each exporter reads from one place.
 */
export async function gatherBlobs(artifact: BuildArtifact, workspace: Workspace): Promise<void> {
  for (const image of artifact.images) {
    for (const layer of image.layers) await importBlob(workspace.layout, layer.descriptor, await layer.blobPath());
  }
}
