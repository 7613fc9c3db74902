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
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { Image } from '../../layers/image.js';
import { appendLayers, editConfig, emptyImage } from '../../layers/mutate.js';
import { MediaType, type Digest, type ImageConfig, type Manifest, type Platform } from '../../layers/types.js';
import { BlobCache, formatReference, openRepository, parseReference, pushImage, resolveCredentials, type ImageReference, type RemoteRepository } from '../../registry-client/index.js';
import { RegistryTransport } from '../../registry-client/transport.js';
import type { RegistrySettings } from '../registry/registry-access.js';
import { checkEntry, type CacheEntry, type CacheStore } from './cache-store.js';
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

/** A record lists every file a COPY read, so configs can be large, but not larger than this. */
const CONFIG_LIMIT = 16 * 1024 * 1024;

/** One cache repository, e.g. `registry.example.com/team/cache`. */
export class RegistryCache implements CacheStore {
  /** The repository as `registry/path`. */
  readonly repository: string;
  private readonly ref: ImageReference;
  private readonly settings: RegistrySettings;
  private readonly ttlSeconds: number | undefined;
  private readonly tmpDir: string;
  private transport: Promise<RegistryTransport> | undefined;
  /** Where fetched entries are staged until the local store has taken them; made on first use. */
  private repositoryPromise: Promise<{ repository: RemoteRepository; staging: string }> | undefined;

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

  get name(): string {
    return this.repository;
  }

  /** Pushes the result of the step `key`: its record, and its layer when the record has one. */
  async put(key: Digest, entry: CacheEntry): Promise<void> {
    checkEntry(key, entry);
    await this.guarded(`publishing ${tagOf(key)}`, async (transport) => {
      const { record, layer } = entry;
      const layers = layer !== undefined ? appendLayers(emptyImage(), [{ layer }]) : emptyImage();
      const image = editConfig(layers, () => entryConfig(record));
      await pushImage([{ ...this.ref, tag: tagOf(key) }], { kind: 'image', image }, { transport: () => transport, ...this.progress() });
    });
  }

  /**
   * The live entry for the step `key`, verified; its layer blob is fetched when it is read. A
   * missing tag or an entry older than the TTL is a miss; other failures throw a TsbuildError.
   */
  async get(key: Digest): Promise<CacheEntry | undefined> {
    const tag = tagOf(key);
    return this.guarded(`looking up ${tag}`, async () => {
      const { repository } = await this.openRepository();
      const manifest = await repository.findTag(tag);
      if (manifest === undefined) return undefined;
      const image = repository.image(manifest);
      const record = await readEntry(image, `${this.repository}:${tag}`);
      if (this.expired(record)) return undefined;
      const [layer] = await image.layers();
      return { record, ...(layer !== undefined && { layer }) };
    });
  }

  /** Closes the connections to the registry and removes what was staged. */
  async release(): Promise<void> {
    const transport = this.transport;
    const repository = this.repositoryPromise;
    this.transport = undefined;
    this.repositoryPromise = undefined;
    await transport?.then((t) => t.close(), () => undefined);
    const staging = await repository?.then((r) => r.staging, () => undefined);
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
  }

  /** The repository as a source of images, its blobs staged in a temp directory. */
  private openRepository(): Promise<{ repository: RemoteRepository; staging: string }> {
    this.repositoryPromise ??= (async () => {
      const staging = await mkdtemp(path.join(this.tmpDir, 'cache-repo-'));
      const transport = await this.openTransport();
      const repository = await openRepository(this.ref, { transport: () => transport, cache: await BlobCache.open(staging), ...this.progress() });
      return { repository, staging };
    })();
    return this.repositoryPromise;
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

/** The record of a cache entry image, checked against its manifest and config. */
async function readEntry(image: Image, label: string): Promise<CacheRecord> {
  const manifest = await image.manifest();
  if (manifest.mediaType !== MediaType.ImageManifest || manifest.config.size > CONFIG_LIMIT || manifest.layers.length > 1) {
    throw notAnEntry(label, 'its manifest is not an OCI image manifest with at most one layer');
  }
  return parseEntryConfig(await image.rawConfig(), manifest, label);
}

/** The record in an entry's config, checked against the manifest. */
function parseEntryConfig(bytes: Buffer, manifest: Manifest, label: string): CacheRecord {
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
  return record;
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
