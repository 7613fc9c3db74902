import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { ImageOrIndex } from '../../layers/image.js';
import { layoutItem } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type Platform } from '../../layers/types.js';
import type { TestRegistry } from '../support/registry.js';

const run = promisify(execFile);

export interface BuiltImage {
  layout: OciLayout;
  root: Descriptor;
  /** The root as an image or index of the layout. */
  item: ImageOrIndex;
  /** One manifest descriptor per platform, in order. */
  manifests: Descriptor[];
}

/** Deterministic pseudo-random bytes (SHA-256 in counter mode) so that each seed gives distinct layers. */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, n = 0; offset < size; n++) {
    const block = createHash('sha256').update(`${seed}:${n}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

/**
 * Writes an image into a layout at `dir`, tagged `tag`: one manifest per platform (a gzip layer of
 * `layerSize` seeded bytes plus a small shared one), under an OCI index when there are several.
 */
export async function buildImage(dir: string, options: { platforms: Platform[]; seed: string; layerSize?: number; tag?: string }): Promise<BuiltImage> {
  const layout = await OciLayout.open(dir, { create: true });
  const shared = Buffer.from(`shared layer content of ${options.seed}`);
  const manifests: Descriptor[] = [];
  for (const platform of options.platforms) {
    const raw = [shared, seededBytes(`${options.seed}/${platform.architecture}/${platform.variant ?? ''}`, options.layerSize ?? 3000)];
    const layers: Descriptor[] = [];
    for (const content of raw) layers.push(await layout.writeBlob(gzipSync(content), MediaType.LayerGzip));
    const config = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined && { variant: platform.variant }),
      config: { Env: [`SEED=${options.seed}`] },
      rootfs: { type: 'layers', diff_ids: raw.map((content) => `sha256:${createHash('sha256').update(content).digest('hex')}`) },
    };
    const configDescriptor = await layout.writeJson(config, MediaType.ImageConfig);
    const manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers };
    manifests.push({ ...(await layout.writeJson(manifest, MediaType.ImageManifest)), platform });
  }
  const root =
    manifests.length === 1
      ? { ...manifests[0]!, platform: undefined }
      : await layout.writeJson({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests }, MediaType.ImageIndex);
  delete root.platform;
  await layout.addImage(root, [options.tag ?? 'v1']);
  return { layout, root, item: layoutItem(layout, root), manifests };
}

/** `--creds`-style options for skopeo against a test registry. */
function credsArgs(registry: TestRegistry, flag: string): string[] {
  if (registry.auth === 'plain') return [];
  const [user, password] = Object.entries(registry.users)[0]!;
  return [flag, `${user}:${password}`];
}

export async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** The raw manifest bytes the registry serves for `repo:tag`, as skopeo reads them. */
export async function skopeoRawManifest(registry: TestRegistry, host: string, image: string): Promise<Buffer> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', ...credsArgs(registry, '--creds'), `docker://${host}/${image}`], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** `skopeo inspect` JSON for `repo:tag`. */
export async function skopeoInspect(registry: TestRegistry, host: string, image: string): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  return JSON.parse(await skopeo(['inspect', '--tls-verify=false', ...credsArgs(registry, '--creds'), `docker://${host}/${image}`])) as {
    Digest: string;
    Layers: string[];
    Architecture: string;
  };
}

/** Copies `repo:tag` (every platform) from the registry into an OCI layout at `dir`. */
export async function skopeoCopyOut(registry: TestRegistry, image: string, dir: string): Promise<void> {
  await skopeo(['copy', '--all', '--src-tls-verify=false', ...credsArgs(registry, '--src-creds'), `docker://${registry.host}/${image}`, `oci:${dir}:copied`]);
}

/** Pushes an OCI layout's image (every platform) into the registry with skopeo. */
export async function skopeoCopyIn(registry: TestRegistry, source: string, image: string): Promise<void> {
  await skopeo(['copy', '--all', '--dest-tls-verify=false', ...credsArgs(registry, '--dest-creds'), `oci:${source}`, `docker://${registry.host}/${image}`]);
}

/** digest → bytes of every blob in a layout directory. */
export function layoutBlobs(dir: string): Map<string, Buffer> {
  const blobs = new Map<string, Buffer>();
  const base = join(dir, 'blobs', 'sha256');
  for (const name of readdirSync(base)) blobs.set(`sha256:${name}`, readFileSync(join(base, name)));
  return blobs;
}

/** The registry's own file for a blob (filesystem storage driver). */
export function registryBlobFile(registry: TestRegistry, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(registry.dir, 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
