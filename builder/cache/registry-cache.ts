/**
 * The build cache in a registry repository (`--cache-repo`), shared by builds on other machines.
 *
 * Each step's result is a small OCI image tagged with the 64 hex digits of the step's cache key:
 * - its config is a valid image config whose label `dev.tsbuild.cache.record` holds the step's
 *   CacheRecord as JSON (history, named inputs, createdAt). A config blob comes back byte for
 *   byte from any registry, unlike manifest annotations, which some registries drop or limit;
 *   `created`, `history` and `rootfs.diff_ids` repeat the record so other tools can read it too;
 * - its only layer is the step's layer blob, or it has no layer when the step made none.
 *
 * `--cache-ttl` ages entries out by the record's `createdAt`: an older entry is a miss.
 */
import { copyFile, link, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig, type Manifest, type Platform } from '../../layers/types.js';
import { BlobCache, formatReference, parseReference, pullImage, pushImage, RegistryTransport, resolveCredentials, type ImageReference, type RegistryResponse } from '../../registry-client/index.js';
import type { RegistrySettings } from '../registry/registry-access.js';
import type { LocalCacheStore } from './local-store.js';
import { asCacheRecord, type CacheRecord } from './local-store-record.js';

/** The config label that carries an entry's CacheRecord. */
export const CACHE_RECORD_LABEL = 'dev.tsbuild.cache.record';

export interface RegistryCacheOptions {
  readonly registry?: RegistrySettings;
  /** Entries older than this many seconds are misses; no limit when absent. */
  readonly ttlSeconds?: number;
  /** Where entries are staged on their way in and out; the system temp dir when absent. */
  readonly tmpDir?: string;
}

/** Manifests of cache entries are a few hundred bytes; anything this large is not one. */
const MANIFEST_LIMIT = 64 * 1024;
/** A record lists every file a COPY read, so configs can be large, but not larger than this. */
const CONFIG_LIMIT = 16 * 1024 * 1024;

/** One cache repository, e.g. `registry.example.com/team/cache`. */
export class RegistryCache {
  /** The repository as `registry/path`. */
  readonly repository: string;
  private readonly ref: ImageReference;
  private readonly settings: RegistrySettings;
  private readonly ttlSeconds: number | undefined;
  private readonly tmpDir: string;
  private transport: Promise<RegistryTransport> | undefined;

  constructor(repository: string, options: RegistryCacheOptions = {}) {
    const lastSegment = repository.slice(repository.lastIndexOf('/') + 1);
    if (lastSegment.includes(':') || lastSegment.includes('@')) {
      throw new TsbuildError('BAD_FLAG', `invalid --cache-repo "${repository}": expected REGISTRY/REPOSITORY, without a tag or digest`);
    }
    const parsed = parseReference(repository);
    this.ref = { registry: parsed.registry, repository: parsed.repository };
    this.repository = formatReference(this.ref);
    if (options.ttlSeconds !== undefined && !(Number.isFinite(options.ttlSeconds) && options.ttlSeconds > 0)) {
      throw new TsbuildError('BAD_FLAG', `invalid cache TTL ${options.ttlSeconds}: expected a positive number of seconds`);
    }
    this.settings = options.registry ?? {};
    this.ttlSeconds = options.ttlSeconds;
    this.tmpDir = options.tmpDir ?? os.tmpdir();
  }

  /** Pushes the result of the step `key`: `record`, and the layer blob at `layerBlobPath` when the record has a layer. */
  async publish(key: Digest, record: CacheRecord, layerBlobPath: string | undefined): Promise<void> {
    if ((record.layer === undefined) !== (layerBlobPath === undefined)) {
      throw new TsbuildError('CACHE_RECORD', `cache record for ${key}: a layer blob must be given exactly when the record has a layer`);
    }
    await this.guarded(`publishing ${tagOf(key)}`, async (transport) => {
      const staging = await mkdtemp(path.join(this.tmpDir, 'cache-repo-'));
      try {
        const layout = await OciLayout.open(staging, { create: true });
        const layers: Descriptor[] = [];
        if (record.layer !== undefined) {
          const { mediaType, digest, size } = record.layer.descriptor;
          await linkOrCopy(layerBlobPath as string, layout.path(digest));
          layers.push({ mediaType, digest, size });
        }
        const config = await layout.writeJson(entryConfig(record), MediaType.ImageConfig);
        const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config, layers };
        const root = await layout.writeJson(manifest, MediaType.ImageManifest);
        await pushImage([{ ...this.ref, tag: tagOf(key) }], { layout, root }, { transport: () => transport, ...this.progress() });
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  /**
   * Looks the step `key` up and, when the repository has a live entry for it, pulls it (verified)
   * into `into`. False for a missing tag or an entry older than the TTL; other failures throw a
   * TsbuildError.
   */
  async fetch(key: Digest, into: LocalCacheStore): Promise<boolean> {
    const tag = tagOf(key);
    return this.guarded(`looking up ${tag}`, async (transport) => {
      const staging = await mkdtemp(path.join(this.tmpDir, 'cache-repo-'));
      try {
        const cache = await BlobCache.open(staging);
        const entry = await this.readEntry(transport, tag, cache);
        if (entry === undefined || this.expired(entry.record)) return false;
        // Manifest and config are in the staging cache already: this downloads only the layer.
        await pullImage({ ...this.ref, digest: entry.manifest.digest }, { transport: () => transport, platform: entry.platform, cache, ...this.progress() });
        const layer = entry.record.layer;
        await into.put(key, entry.record, layer === undefined ? undefined : cache.layout.path(layer.descriptor.digest));
        return true;
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  /** Closes the connections to the registry. */
  async close(): Promise<void> {
    const transport = this.transport;
    this.transport = undefined;
    await transport?.then((t) => t.close(), () => undefined);
  }

  /** The entry tagged `tag` with its manifest and config stored in `cache`, or undefined when there is no such tag. */
  private async readEntry(transport: RegistryTransport, tag: string, cache: BlobCache): Promise<{ manifest: Descriptor; record: CacheRecord; platform: Platform } | undefined> {
    const label = `${this.repository}:${tag}`;
    const scope = `repository:${this.ref.repository}:pull`;
    const response = await transport.request({
      method: 'GET',
      path: `/v2/${this.ref.repository}/manifests/${tag}`,
      headers: { accept: MediaType.ImageManifest },
      scope,
      expectStatus: [200, 404],
    });
    if (response.status === 404) {
      await response.body.dump();
      return undefined;
    }
    const manifestBytes = await readBody(response, MANIFEST_LIMIT, label);
    const manifestDigest = sha256Digest(manifestBytes);
    const served = headerValue(response, 'docker-content-digest');
    if (served !== undefined && served !== manifestDigest) {
      throw new TsbuildError('DIGEST_MISMATCH', `cache entry ${label}: the registry says its manifest is ${served}, but its content is ${manifestDigest}`);
    }
    const manifest = parseEntryManifest(manifestBytes, label);
    const manifestDescriptor: Descriptor = { mediaType: MediaType.ImageManifest, digest: manifestDigest, size: manifestBytes.length };
    await cache.store(manifestBytes, manifestDescriptor, `manifest ${label}`);

    const configResponse = await transport.request({ method: 'GET', path: `/v2/${this.ref.repository}/blobs/${manifest.config.digest}`, scope, expectStatus: [200] });
    const configBytes = await readBody(configResponse, manifest.config.size, `config of ${label}`);
    await cache.store(configBytes, manifest.config, `config of ${label}`);
    const { record, platform } = parseEntryConfig(configBytes, manifest, label);
    return { manifest: manifestDescriptor, record, platform };
  }

  private expired(record: CacheRecord): boolean {
    if (this.ttlSeconds === undefined) return false;
    const created = Date.parse(record.createdAt);
    return Number.isNaN(created) || Date.now() - created > this.ttlSeconds * 1000;
  }

  /** Runs `action` with the registry's transport; any failure comes out as a TsbuildError naming `what`. */
  private async guarded<T>(what: string, action: (transport: RegistryTransport) => Promise<T>): Promise<T> {
    try {
      return await action(await this.openTransport());
    } catch (error) {
      if (error instanceof TsbuildError) throw error;
      throw new TsbuildError('CACHE_REPO', `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  private openTransport(): Promise<RegistryTransport> {
    this.transport ??= (async () => {
      const { registry } = this.ref;
      const credentials = await resolveCredentials(registry, this.settings.env ? { env: this.settings.env } : {});
      return new RegistryTransport(registry, {
        ...(this.settings.insecureRegistries?.includes(registry) ? { insecure: true } : {}),
        ...(this.settings.caFile !== undefined ? { caFile: this.settings.caFile } : {}),
        ...(credentials !== undefined ? { credentials } : {}),
      });
    })();
    return this.transport;
  }

  private progress(): { onProgress?: NonNullable<RegistrySettings['onTransfer']> } {
    return this.settings.onTransfer ? { onProgress: this.settings.onTransfer } : {};
  }
}

/** The tag of the entry for step `key`: the key's hex digits. */
function tagOf(key: Digest): string {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(key)?.[1];
  if (hex === undefined) throw new TsbuildError('CACHE_RECORD', `malformed cache key ${key}`);
  return hex;
}

/** An entry's image config: the record in a label, and what of it an image config can say itself. */
function entryConfig(record: CacheRecord): ImageConfig {
  return {
    created: record.createdAt,
    ...recordPlatform(record),
    config: { Labels: { [CACHE_RECORD_LABEL]: JSON.stringify(record) } },
    rootfs: { type: 'layers', diff_ids: record.layer ? [record.layer.diffId] : [] },
    history: [{ created: record.createdAt, ...record.history }],
  };
}

/** The platform named by the record's `platform` input (`os/arch[/variant] …`); `unknown` when there is none. */
function recordPlatform(record: CacheRecord): Platform {
  const [os, architecture, variant] = (record.inputs['platform'] ?? '').split(' ')[0]!.split('/');
  if (!os || !architecture) return { os: 'unknown', architecture: 'unknown' };
  return { os, architecture, ...(variant ? { variant } : {}) };
}

function parseEntryManifest(bytes: Buffer, label: string): Manifest {
  const manifest = parseJson(bytes, label) as Partial<Manifest> | undefined;
  const layers = manifest?.layers;
  if (
    manifest?.mediaType !== MediaType.ImageManifest ||
    !isDescriptor(manifest.config) ||
    manifest.config.size > CONFIG_LIMIT ||
    !Array.isArray(layers) ||
    layers.length > 1 ||
    !layers.every(isDescriptor)
  ) {
    throw notAnEntry(label, 'its manifest is not an OCI image manifest with at most one layer');
  }
  return manifest as Manifest;
}

/** The record in an entry's config, checked against the manifest, and the config's platform. */
function parseEntryConfig(bytes: Buffer, manifest: Manifest, label: string): { record: CacheRecord; platform: Platform } {
  const config = parseJson(bytes, label) as Partial<ImageConfig> | undefined;
  const text = config?.config?.Labels?.[CACHE_RECORD_LABEL];
  if (config === undefined || typeof config.os !== 'string' || typeof config.architecture !== 'string' || typeof text !== 'string') {
    throw notAnEntry(label, `its config has no ${CACHE_RECORD_LABEL} label`);
  }
  const record = asCacheRecord(parseJson(Buffer.from(text, 'utf8'), label));
  if (record === undefined) throw notAnEntry(label, 'its cache record is malformed');
  const layer = manifest.layers[0];
  const matches =
    record.layer === undefined
      ? layer === undefined
      : layer !== undefined &&
        layer.digest === record.layer.descriptor.digest &&
        layer.size === record.layer.descriptor.size &&
        config.rootfs?.diff_ids?.length === 1 &&
        config.rootfs.diff_ids[0] === record.layer.diffId;
  if (!matches) throw notAnEntry(label, 'its cache record does not describe its layer');
  return { record, platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) } };
}

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Partial<Descriptor> | null;
  return typeof d === 'object' && d !== null && typeof d.mediaType === 'string' && typeof d.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(d.digest) && Number.isSafeInteger(d.size) && (d.size as number) >= 0;
}

function parseJson(bytes: Buffer, label: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw notAnEntry(label, 'it is not valid JSON');
  }
}

function notAnEntry(label: string, why: string): TsbuildError {
  return new TsbuildError('CACHE_REPO', `${label} is not a build cache entry: ${why}`);
}

/** A whole response body, refused beyond `limit` bytes. */
async function readBody(response: RegistryResponse, limit: number, label: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      response.body.destroy();
      throw new TsbuildError('SIZE_MISMATCH', `${label}: the registry sent more than the expected ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function headerValue(response: RegistryResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Puts `source` at `target`: a hard link, or a copy across filesystems. */
async function linkOrCopy(source: string, target: string): Promise<void> {
  try {
    await link(source, target);
  } catch {
    await copyFile(source, target);
  }
}
