import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { chainIds } from './chain-id.js';
import { digestOfStream } from './digest.js';
import { TsbuildError } from './errors.js';
import { writeTarFile } from './layout-tar.js';
import type { Image, Layer } from './image.js';
import { CONFIG_MEDIA_TYPES } from './manifest-document.js';
import type { Descriptor, Digest, ImageConfig } from './types.js';

/** How a layer is stored in the archive, and what must be known before its tar header is written. */
interface ArchiveLayer {
  layer: Layer;
  descriptor: Descriptor;
  gzipped: boolean;
  /** Size of the uncompressed tar. */
  size: number;
  /** Directory of the layer in the archive: the hex of its chain ID, unique per position. */
  id: string;
}

const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::[0-9]+)?$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

/**
 * Writes the image as a `docker save` archive: `manifest.json`, `repositories`, the config as
 * `<config hex>.json` and each layer as `<chain id hex>/layer.tar`, with fixed tar metadata,
 * through a temp file renamed to `dest`.
 *
 * Layers are stored uncompressed, as `docker save` does: then each layer file's SHA-256 is the
 * diff_id the config lists, which readers that hash the file without decompressing rely on.
 * `docker load` and the docker-archive readers of other tools also accept gzip layers, but gain
 * nothing from them here. While decompressing, each layer is checked against its diff_id.
 */
export async function writeDockerArchive(image: Image, repoTags: readonly string[], dest: string): Promise<void> {
  const normalized = repoTags.map(normalizeRepoTag);
  const { config, layers: descriptors } = await image.manifest();
  if (!CONFIG_MEDIA_TYPES.has(config.mediaType)) {
    throw new TsbuildError('OUTPUT', `docker-archive: ${config.mediaType} is not an image config media type`);
  }
  const configBytes = await image.rawConfig();
  const diffIds = parseDiffIds(configBytes, config.digest);
  if (diffIds.length !== descriptors.length) {
    throw new TsbuildError('OUTPUT', `docker-archive: the image has ${descriptors.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers = await prepareLayers(await image.layers(), diffIds);
  const configName = `${hexOf(config.digest)}.json`;
  const manifest = [{ Config: configName, RepoTags: normalized, Layers: layers.map((layer) => `${layer.id}/layer.tar`) }];
  const top = layers[layers.length - 1];
  const repositories: Record<string, Record<string, string>> = {};
  if (top !== undefined) {
    for (const repoTag of normalized) {
      const colon = repoTag.lastIndexOf(':');
      (repositories[repoTag.slice(0, colon)] ??= {})[repoTag.slice(colon + 1)] = top.id;
    }
  }

  await writeTarFile(dest, async (tar) => {
    await tar.file('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await tar.file('repositories', Buffer.from(JSON.stringify(repositories)));
    await tar.file(configName, configBytes);
    for (const layer of layers) {
      await tar.directory(`${layer.id}/`);
      await tar.stream(`${layer.id}/layer.tar`, layer.size, await layer.layer.compressed(), layer.gzipped ? createGunzip() : undefined);
    }
  });
}

/** Learns each layer's uncompressed size and checks it against its diff_id before anything is written. */
async function prepareLayers(imageLayers: readonly Layer[], diffIds: Digest[]): Promise<ArchiveLayer[]> {
  const layers: ArchiveLayer[] = [];
  const chains = chainIds(diffIds);
  for (const [index, layer] of imageLayers.entries()) {
    const descriptor = await layer.descriptor();
    const diffId = diffIds[index] as Digest;
    const gzipped = isGzipLayer(descriptor.mediaType);
    const { digest, size } = gzipped ? await measureGunzipped(layer, descriptor) : { digest: descriptor.digest, size: descriptor.size };
    if (digest !== diffId) {
      throw new TsbuildError(
        'OUTPUT',
        `docker-archive: layer ${descriptor.digest} uncompresses to ${digest}, but the config lists diff_id ${diffId}`,
      );
    }
    layers.push({ layer, descriptor, gzipped, size, id: hexOf(chains[index]!) });
  }
  return layers;
}

/** Whether a layer is gzip-compressed; uncompressed tar is passed through, anything else is refused. */
function isGzipLayer(mediaType: string): boolean {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return true;
  if (mediaType.endsWith('.tar')) return false;
  throw new TsbuildError(
    'OUTPUT',
    `docker-archive: cannot decompress layers of media type ${mediaType}; use gzip or uncompressed layers`,
  );
}

async function measureGunzipped(layer: Layer, descriptor: Descriptor): Promise<{ digest: Digest; size: number }> {
  let measured: { digest: Digest; size: number } | undefined;
  try {
    await pipeline(await layer.compressed(), createGunzip(), async (gunzipped: AsyncIterable<Buffer>) => {
      measured = await digestOfStream(gunzipped);
    });
  } catch (error) {
    if (error instanceof TsbuildError) throw error;
    throw new TsbuildError('OUTPUT', `docker-archive: layer ${descriptor.digest} is not valid gzip: ${String(error)}`);
  }
  return measured!;
}

function parseDiffIds(bytes: Buffer, digest: Digest): Digest[] {
  let config: Partial<ImageConfig>;
  try {
    config = JSON.parse(bytes.toString('utf8')) as Partial<ImageConfig>;
  } catch {
    throw new TsbuildError('OUTPUT', `docker-archive: config ${digest} is not valid JSON`);
  }
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every((id) => /^sha256:[0-9a-f]{64}$/.test(id))) {
    throw new TsbuildError('OUTPUT', `docker-archive: config ${digest} has no valid rootfs.diff_ids`);
  }
  return diffIds;
}

/** Checks a `name[:tag]` reference as `docker load` would, and spells it with its tag. */
function normalizeRepoTag(reference: string): string {
  const invalid = (why: string): TsbuildError =>
    new TsbuildError('OUTPUT', `docker-archive: invalid image reference "${reference}": ${why}`);
  if (reference.includes('@')) throw invalid('a tag is needed, not a digest');
  const colon = reference.lastIndexOf(':');
  const hasTag = colon > reference.lastIndexOf('/');
  const name = hasTag ? reference.slice(0, colon) : reference;
  const tag = hasTag ? reference.slice(colon + 1) : 'latest';
  if (!TAG.test(tag)) throw invalid(`bad tag "${tag}"`);
  const components = name.split('/');
  // The first component is a registry host if it looks like one (has a dot or port, or is localhost).
  const first = components[0] ?? '';
  if (components.length > 1 && /[.:]|^localhost$/.test(first)) {
    if (!DOMAIN.test(first)) throw invalid(`bad registry host "${first}"`);
    components.shift();
  }
  if (!components.every((component) => NAME_COMPONENT.test(component))) {
    throw invalid('repository names use lowercase letters, digits and separators');
  }
  return `${name}:${tag}`;
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1);
}
