import path from 'node:path';
import type { Platform } from '../../layers/types.js';
import type { ImageReference, PushResult, RegistryAccess, RemoteImage, TransferEvent } from '../../registry-client/index.js';
import { layoutItem } from '../../layers/layout-image.js';
import type { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import { modelLayer, type ImageLayer } from '../model/image-layer.js';
import type { ResolvedImage } from '../model/sources.js';
import { defaultCacheDir } from '../locations.js';

/** How the build talks to registries. */
export interface RegistrySettings {
  /** Hosts (`host[:port]`) reached over plain HTTP; loopback hosts always are. */
  readonly insecureRegistries?: readonly string[];
  /** Extra CA certificates (PEM) to trust. */
  readonly caFile?: string;
  /** The local cache of pulled images; `<cache dir>/images` when absent. */
  readonly imageCacheDir?: string;
  readonly onTransfer?: (event: TransferEvent) => void;
  /** Where credentials and the cache directory are looked up; the process environment when absent. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The registry client, loaded when a registry is first contacted: it brings in undici and TLS,
 * which planning and builds from local images never need.
 */
function registryClient(): Promise<typeof import('../../registry-client/index.js')> {
  return import('../../registry-client/index.js');
}

function access(ref: ImageReference, settings: RegistrySettings): RegistryAccess {
  const insecure = settings.insecureRegistries?.includes(ref.registry) ? { insecure: true } : {};
  return {
    transportOptions: { ...insecure, ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}) },
    ...(settings.env ? { credentialLookup: { env: settings.env } } : {}),
  };
}

/** The local cache pulled images are kept in (an OCI layout). */
export function imageCacheDir(settings: RegistrySettings): string {
  return settings.imageCacheDir ?? path.join(defaultCacheDir(settings.env ?? {}), 'images');
}

/**
 * Resolves `reference` for `platform` as a base image: its manifest and config are fetched (or
 * found in the image cache); its layers only when a step needs the base's files.
 */
export async function resolveBaseImage(reference: string, platform: Platform, settings: RegistrySettings): Promise<ResolvedImage> {
  const { parseReference, remoteImage } = await registryClient();
  const ref = parseReference(reference);
  return describeBase(ref, await remoteImage(ref, { ...access(ref, settings), platform, cache: imageCacheDir(settings), ...progress(settings) }));
}

/** Pulls `reference` for `platform` into the image cache, layers and all (no download when it is cached), and describes it as a base. */
export async function pullBaseImage(reference: string, platform: Platform, settings: RegistrySettings): Promise<ResolvedImage> {
  const { parseReference, pullImage } = await registryClient();
  const ref = parseReference(reference);
  return describeBase(ref, await pullImage(ref, { ...access(ref, settings), platform, cache: imageCacheDir(settings), ...progress(settings) }));
}

async function describeBase(ref: ImageReference, remote: RemoteImage): Promise<ResolvedImage> {
  return {
    image: remote.image,
    source: { registry: ref.registry, repository: ref.repository },
    reference: remote.refName,
    manifestDigest: await remote.image.digest(),
    config: await remote.image.config(),
    layers: (await remote.image.manifest()).layers,
  };
}

function progress(settings: RegistrySettings): { onProgress?: (event: TransferEvent) => void } {
  return settings.onTransfer ? { onProgress: settings.onTransfer } : {};
}

/**
 * Pushes a built image (or index) to every name in `names`: its manifests and configs are read from
 * `layout`, its layers are `layers` (by digest). `origins` tells where pulled base layers came
 * from: blobs already on the target registry are mounted, not uploaded, and a base layer is only
 * downloaded if it must be uploaded.
 */
export async function pushBuiltImage(
  names: readonly string[],
  layout: OciLayout,
  root: Descriptor,
  layers: readonly ImageLayer[],
  origins: ReadonlyMap<Digest, { readonly registry: string; readonly repository: string }>,
  settings: RegistrySettings,
): Promise<PushResult> {
  const { parseReference, pushImage } = await registryClient();
  const targets = names.map((name) => parseReference(name));
  const registry = targets[0]!.registry;
  const byDigest = new Map(layers.map((layer) => [layer.descriptor.digest, modelLayer(layer, origins.get(layer.descriptor.digest))]));
  return pushImage(targets, layoutItem(layout, root, (descriptor) => byDigest.get(descriptor.digest)), {
    ...access(targets[0]!, settings),
    mountFrom: (digest) => {
      const origin = origins.get(digest);
      return origin?.registry === registry ? origin.repository : undefined;
    },
    ...progress(settings),
  });
}
