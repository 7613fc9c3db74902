import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeTarFile } from '../../layers/layout-tar.js';
import type { OciLayout } from '../../layers/oci-layout.js';
import { platformMatches } from '../../layers/platform.js';
import type { Digest, Platform } from '../../layers/types.js';
import type { AssembledImage } from './assemble.js';
import type { BuildArtifact } from './exporter.js';
import { blobsOf } from './layout-export.js';

/**
 * Writes `layout` (holding exactly the artifact) as an OCI archive: `oci-layout`, `index.json`,
 * then a `manifest.json` in the `docker save` format, then the blobs sorted by digest.
 *
 * `manifest.json` names the image of `platform` (else the first) under every name, as `docker
 * save` does since Docker 25. Tools that read OCI archives ignore it; those that load one image
 * from an archive (podman 4 refuses an index.json listing several names) fall back to it.
 */
export async function writeOciArchive(layout: OciLayout, artifact: BuildArtifact, names: readonly string[], platform: Platform, dest: string): Promise<void> {
  const layoutFile = await readFile(path.join(layout.dir, 'oci-layout'));
  const index = await readFile(path.join(layout.dir, 'index.json'));
  const image = artifact.images.find((i) => platformMatches(i.platform, platform)) ?? artifact.images[0]!;
  const digests = [...new Set(blobsOf(artifact).map((b) => b.digest))].sort();
  await writeTarFile(dest, async (tar) => {
    await tar.file('oci-layout', layoutFile);
    await tar.file('index.json', index);
    await tar.file('manifest.json', Buffer.from(JSON.stringify(dockerManifest(image, names))));
    await tar.directory('blobs/');
    await tar.directory('blobs/sha256/');
    for (const digest of digests) {
      const file = layout.path(digest);
      await tar.stream(blobName(digest), (await stat(file)).size, createReadStream(file));
    }
  });
}

function dockerManifest(image: AssembledImage, names: readonly string[]): unknown[] {
  return [{ Config: blobName(image.config.digest), RepoTags: [...names], Layers: image.layers.map((l) => blobName(l.descriptor.digest)) }];
}

function blobName(digest: Digest): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}
