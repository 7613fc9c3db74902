import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Image } from '../../layers/image.js';
import { writeTarFile } from '../../layers/layout-tar.js';
import type { OciLayout } from '../../layers/oci-layout.js';
import type { Digest } from '../../layers/types.js';

/**
 * Writes `layout` as an OCI archive: `oci-layout`, `index.json`, then a `manifest.json` in the
 * `docker save` format, then every blob sorted by digest.
 *
 * `manifest.json` lists `image` under every name, as `docker save` does since Docker 25. Tools
 * that read OCI archives ignore it; those that load one image from an archive fall back to it
 * (podman 4 refuses an index.json that lists several names).
 */
export async function writeOciArchive(layout: OciLayout, image: Image, names: readonly string[], dest: string): Promise<void> {
  const layoutFile = await readFile(path.join(layout.dir, 'oci-layout'));
  const index = await readFile(path.join(layout.dir, 'index.json'));
  const manifest = await image.manifest();
  const dockerManifest = [{ Config: blobName(manifest.config.digest), RepoTags: [...names], Layers: manifest.layers.map((l) => blobName(l.digest)) }];
  const blobs = (await readdir(path.join(layout.dir, 'blobs', 'sha256'))).filter((name) => /^[0-9a-f]{64}$/.test(name)).sort();
  await writeTarFile(dest, async (tar) => {
    await tar.file('oci-layout', layoutFile);
    await tar.file('index.json', index);
    await tar.file('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
    await tar.directory('blobs/');
    await tar.directory('blobs/sha256/');
    for (const hex of blobs) {
      const file = path.join(layout.dir, 'blobs', 'sha256', hex);
      await tar.stream(`blobs/sha256/${hex}`, (await stat(file)).size, createReadStream(file));
    }
  });
}

function blobName(digest: Digest): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`;
}
