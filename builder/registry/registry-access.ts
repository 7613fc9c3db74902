import path from 'node:path';
import type { Platform } from '../../layers/types.js';
import type { ImageReference, PushResult, RegistryAccess, RemoteImage, TransferEvent } from '../../registry-client/index.js';
import { formatReference, parseReference } from '../../registry-client/reference.js';
import type { ImageOrIndex } from '../../layers/image.js';
import type { ResolvedImage } from '../model/sources.js';
import { defaultCacheDir } from '../locations.js';
import { cachedTagDigest } from './cached-base-image.js';

/** How the build talks to registries. */
export interface RegistrySettings {
  /** Hosts (`host[:port]`) reached over plain HTTP; loopback hosts always are. */
  readonly insecureRegistries?: readonly string[];
  /** Extra CA certificates (PEM) to trust. */
  readonly caFile?: string;
  /** The local cache of pulled images; `<cache dir>/images` when absent. */
  readonly imageCacheDir?: string;
  readonly onTransfer?: (event: TransferEvent) => void;
  /**
   * `--pull`: resolve every tag against its registry. Without it a base image the image cache
   * already holds for the platform is used as it is, and the registry is not contacted.
   */
  readonly pull?: boolean;
  /** Where credentials and the cache directory are looked up; the process environment when absent. */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The registry client's pulling and pushing parts, each loaded when first used: a build resolves
 * its bases without the push code, and one from cached images never loads undici and TLS.
 */
function registryPull(): Promise<typeof import('../../registry-client/pull.js')> {
  return import('../../registry-client/pull.js');
}

function registryPush(): Promise<typeof import('../../registry-client/push.js')> {
  return import('../../registry-client/push.js');
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
 * found in the image cache); its layers only when a step needs the base's files. Without `pull`,
 * a tag the image cache holds complete for the platform is used without asking the registry.
 */
export async function resolveBaseImage(reference: string, platform: Platform, settings: RegistrySettings): Promise<ResolvedImage> {
  const { remoteImage } = await registryPull();
  const ref = parseReference(reference);
  const options = { ...access(ref, settings), platform, cache: imageCacheDir(settings), ...progress(settings) };
  const cached = settings.pull || ref.digest !== undefined ? undefined : await cachedTagDigest(imageCacheDir(settings), formatReference(ref));
  if (cached !== undefined) return describeBase(ref, await remoteImage({ ...ref, digest: cached }, options));
  const remote = await remoteImage(ref, options);
  // The tag's resolution, for the next build without --pull.
  await remote.cache.layout.addImage(remote.root, [remote.refName]);
  return describeBase(ref, remote);
}

/** Pulls `reference` for `platform` into the image cache, layers and all (no download when it is cached), and describes it as a base. */
export async function pullBaseImage(reference: string, platform: Platform, settings: RegistrySettings): Promise<ResolvedImage> {
  const { pullImage } = await registryPull();
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
 * Pushes an image (or index) to every name in `names`. Blobs the registry has are skipped, a
 * layer whose `origin` is a repository of the same registry is mounted from it, and a layer's
 * bytes are read only if it must be uploaded.
 */
export async function pushToRegistry(names: readonly string[], item: ImageOrIndex, settings: RegistrySettings): Promise<PushResult> {
  const { pushImage } = await registryPush();
  const targets = names.map((name) => parseReference(name));
  return pushImage(targets, item, { ...access(targets[0]!, settings), ...progress(settings) });
}
