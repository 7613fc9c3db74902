import path from 'node:path';
import type { Platform } from '../../layers/types.js';
import type { ImageReference, PushResult, RegistryAccess, TransferEvent } from '../../registry-client/index.js';
import type { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor, Digest } from '../../layers/types.js';
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

/** Pulls `reference` for `platform` into the image cache (no download when it is cached) and describes it as a base. */
export async function pullBaseImage(reference: string, platform: Platform, settings: RegistrySettings): Promise<ResolvedImage> {
  const { parseReference, pullImage } = await registryClient();
  const ref = parseReference(reference);
  const pulled = await pullImage(ref, {
    ...access(ref, settings),
    platform,
    cache: imageCacheDir(settings),
    ...(settings.onTransfer ? { onProgress: settings.onTransfer } : {}),
  });
  return {
    layoutDir: pulled.layout.dir,
    source: { registry: ref.registry, repository: ref.repository },
    reference: pulled.refName,
    manifestDigest: pulled.manifestDescriptor.digest,
    config: pulled.config,
    layers: pulled.layers,
  };
}

/**
 * Pushes a built image (or index) from `layout` to every name in `names`. `origins` tells where
 * pulled base layers came from, so blobs already on the target registry are mounted, not uploaded.
 */
export async function pushBuiltImage(
  names: readonly string[],
  layout: OciLayout,
  root: Descriptor,
  origins: ReadonlyMap<Digest, { readonly registry: string; readonly repository: string }>,
  settings: RegistrySettings,
): Promise<PushResult> {
  const { parseReference, pushImage } = await registryClient();
  const targets = names.map((name) => parseReference(name));
  const registry = targets[0]!.registry;
  return pushImage(targets, { layout, root }, {
    ...access(targets[0]!, settings),
    mountFrom: (digest) => {
      const origin = origins.get(digest);
      return origin?.registry === registry ? origin.repository : undefined;
    },
    ...(settings.onTransfer ? { onProgress: settings.onTransfer } : {}),
  });
}
