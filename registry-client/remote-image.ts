/**
 * Images in a registry repository, read lazily through the image model: resolving a reference
 * fetches its manifest (or index), reading a config fetches the config, and a layer blob is
 * downloaded only when the layer is read. Everything fetched is verified (size and digest, as it
 * streams) and kept in a BlobCache, so nothing is fetched twice.
 */
import { sha256Digest } from '../layers/digest.js';
import { TsbuildError } from '../layers/errors.js';
import type { Image, ImageIndex, ImageOrIndex } from '../layers/image.js';
import { blobLayer, lazyImage, lazyIndex } from '../layers/lazy-image.js';
import { parseManifestDocument } from '../layers/manifest-document.js';
import type { Descriptor, Digest } from '../layers/types.js';
import { BlobCache } from './blob-cache.js';
import { errorFromNetwork, RegistryError } from './errors.js';
import { firstHeader, readBody } from './http-body.js';
import { bareMediaType, MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT } from './manifest-types.js';
import type { ProgressListener, TransferEvent } from './progress.js';
import { formatReference, manifestTarget, type ImageReference } from './reference.js';
import { RegistrySession, type RegistryAccess } from './session.js';
import type { RegistryRequest, RegistryResponse } from './transport.js';

export interface RemoteOptions extends RegistryAccess {
  /** The cache, or its directory (an OCI layout, created when missing), where fetched blobs are kept. */
  cache: BlobCache | string;
  onProgress?: ProgressListener;
}

/** What a reference resolved to. */
export interface RemoteRoot {
  /** The manifest or index the reference names. */
  readonly descriptor: Descriptor;
  readonly item: ImageOrIndex;
  readonly cache: BlobCache;
}

/** Image configs larger than this are refused (real ones are a few kB). */
const CONFIG_SIZE_LIMIT = 16 * 1024 * 1024;

/**
 * Resolves `ref` to its manifest or index: a tag with a HEAD, so that a cached manifest is not
 * fetched again; a digest from the cache when it is there. Nothing else is fetched until asked for.
 */
export async function resolveRemote(ref: ImageReference, options: RemoteOptions): Promise<RemoteRoot> {
  const repository = await openRepository(ref, options);
  const cache = repository.cache;
  const { descriptor, bytes } = await repository.resolve();
  const kind = parseManifestDocument(bytes, descriptor.mediaType, repository.label(descriptor.digest)).kind;
  const item: ImageOrIndex = kind === 'index' ? { kind: 'index', index: repository.index(descriptor) } : { kind: 'image', image: repository.image(descriptor) };
  return { descriptor, item, cache };
}

/** The repository `ref` names, to read images from. */
export async function openRepository(ref: ImageReference, options: RemoteOptions): Promise<RemoteRepository> {
  return new RemoteRepository(ref, typeof options.cache === 'string' ? await BlobCache.open(options.cache) : options.cache, options);
}

export class RemoteRepository {
  readonly #name: string;
  readonly #session: RegistrySession;
  /** Blob downloads under way or done, so that a blob asked for twice is fetched once. */
  readonly #fetches = new Map<Digest, Promise<void>>();

  constructor(
    private readonly ref: ImageReference,
    readonly cache: BlobCache,
    private readonly options: RemoteOptions,
  ) {
    this.#name = `${ref.registry}/${ref.repository}`;
    this.#session = new RegistrySession(ref.registry, options);
  }

  label(digest: Digest): string {
    return `${this.#name}@${digest}`;
  }

  /** How a manifest or index of this repository is named in errors and read. */
  #documentSource(descriptor: Descriptor) {
    return {
      label: this.label(descriptor.digest),
      errorCode: 'MANIFEST_INVALID' as const,
      digest: descriptor.digest,
      declaredMediaType: descriptor.mediaType,
      rawManifest: () => this.document(descriptor),
    };
  }

  image(descriptor: Descriptor): Image {
    const origin = { registry: this.ref.registry, repository: this.ref.repository };
    return lazyImage({
      ...this.#documentSource(descriptor),
      rawConfig: (config) => this.config(config, descriptor.digest),
      layer: (layer, diffId) =>
        blobLayer({
          descriptor: layer,
          diffId,
          open: async () => {
            await this.fetchBlob(layer);
            return this.cache.layout.openBlob(layer.digest);
          },
          localPath: async () => {
            await this.fetchBlob(layer);
            return this.cache.layout.path(layer.digest);
          },
          origin,
        }),
    });
  }

  index(descriptor: Descriptor): ImageIndex {
    return lazyIndex({
      ...this.#documentSource(descriptor),
      image: async (entry) => this.image(entry),
      imageIndex: async (entry) => this.index(entry),
    });
  }

  /** The root manifest or index the reference names, from the cache when its digest is known and cached. */
  async resolve(): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    // A digest whose manifest is cached needs no registry at all.
    if (this.ref.digest !== undefined && (await this.cache.has(this.ref.digest))) return this.#cachedDocument(this.ref.digest);
    return this.#session.use(async () => {
      let digest = this.ref.digest;
      if (digest === undefined) {
        const head = await this.#request({ method: 'HEAD', path: this.#manifestPath(manifestTarget(this.ref)), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200, 404] });
        await head.body.dump();
        const said = firstHeader(head.headers, 'docker-content-digest');
        if (head.status === 200 && said !== undefined && /^sha256:[0-9a-f]{64}$/.test(said)) digest = said as Digest;
      }
      if (digest !== undefined && (await this.cache.has(digest))) return this.#cachedDocument(digest);
      // Fetch by digest when it is known (then the content is checked against it), else by tag.
      const target = digest ?? manifestTarget(this.ref);
      const response = await this.#request({ method: 'GET', path: this.#manifestPath(target), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200] }).catch(
        async (error: unknown) => {
          throw error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN' ? ((await this.#unknownRepository()) ?? error) : error;
        },
      );
      const label = digest !== undefined ? this.label(digest) : `${this.#name}:${target}`;
      const bytes = await this.#body(response, MANIFEST_SIZE_LIMIT, label);
      const served = firstHeader(response.headers, 'docker-content-digest');
      const expected = digest ?? (served !== undefined && served.startsWith('sha256:') ? (served as Digest) : sha256Digest(bytes));
      const { mediaType } = parseManifestDocument(bytes, bareMediaType(firstHeader(response.headers, 'content-type')), label);
      const descriptor: Descriptor = { mediaType, digest: expected, size: bytes.length };
      await this.cache.store(bytes, descriptor, `manifest ${label}`);
      return { descriptor, bytes };
    });
  }

  async #cachedDocument(digest: Digest): Promise<{ descriptor: Descriptor; bytes: Buffer }> {
    const bytes = await this.cache.layout.readBlob(digest);
    const { mediaType } = parseManifestDocument(bytes, undefined, this.label(digest));
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes };
  }

  /**
   * The manifest tagged `tag`, fetched (checked against the digest the registry states) and cached,
   * or undefined when there is no such tag. One request: for lookups that often miss.
   */
  async findTag(tag: string): Promise<Descriptor | undefined> {
    return this.#session.use(async () => {
      const response = await this.#request({ method: 'GET', path: this.#manifestPath(tag), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200, 404] });
      if (response.status === 404) {
        await response.body.dump();
        return undefined;
      }
      const label = `${this.#name}:${tag}`;
      const bytes = await this.#body(response, MANIFEST_SIZE_LIMIT, label);
      const digest = sha256Digest(bytes);
      const served = firstHeader(response.headers, 'docker-content-digest');
      if (served !== undefined && served !== digest) {
        throw new TsbuildError('DIGEST_MISMATCH', `${label}: the registry says its manifest is ${served}, but its content is ${digest}`);
      }
      const { mediaType } = parseManifestDocument(bytes, bareMediaType(firstHeader(response.headers, 'content-type')), label);
      const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
      await this.cache.store(bytes, descriptor, `manifest ${label}`);
      return descriptor;
    });
  }

  /** A manifest or index named by a descriptor: from the cache, else fetched by digest and cached. */
  async document(descriptor: Descriptor): Promise<Buffer> {
    const label = this.label(descriptor.digest);
    if (descriptor.size > MANIFEST_SIZE_LIMIT) throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} is larger than ${MANIFEST_SIZE_LIMIT} bytes`);
    const cached = await this.cache.read(descriptor);
    if (cached !== undefined) return cached;
    return this.#session.use(async () => {
      const response = await this.#request({ method: 'GET', path: this.#manifestPath(descriptor.digest), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200] });
      const bytes = await this.#body(response, descriptor.size, label);
      await this.cache.store(bytes, descriptor, `manifest ${label}`);
      return bytes;
    });
  }

  async config(descriptor: Descriptor, manifest: Digest): Promise<Buffer> {
    if (descriptor.size > CONFIG_SIZE_LIMIT) {
      throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${this.label(manifest)} has a config of ${descriptor.size} bytes`);
    }
    await this.fetchBlob(descriptor);
    return (await this.cache.read(descriptor)) as Buffer;
  }

  /** Downloads a blob into the cache unless it is there, resuming broken bodies with Range requests. */
  fetchBlob(descriptor: Descriptor): Promise<void> {
    let fetch = this.#fetches.get(descriptor.digest);
    if (fetch === undefined) {
      fetch = this.#download(descriptor);
      this.#fetches.set(descriptor.digest, fetch);
      fetch.catch(() => this.#fetches.delete(descriptor.digest));
    }
    return fetch;
  }

  async #download(descriptor: Descriptor): Promise<void> {
    const event = (phase: TransferEvent['phase'], bytes: number): void =>
      this.options.onProgress?.({ direction: 'pull', repository: this.#name, digest: descriptor.digest, mediaType: descriptor.mediaType, phase, bytes, total: descriptor.size });
    if (await this.cache.has(descriptor.digest)) {
      event('cached', descriptor.size);
      return;
    }
    const path = `/v2/${this.ref.repository}/blobs/${descriptor.digest}`;
    let url = path;
    event('start', 0);
    await this.#session.use((transport) =>
      this.cache.download(descriptor, {
        label: `blob ${this.label(descriptor.digest)}`,
        open: async (offset) => {
          const request: RegistryRequest = { method: 'GET', path, ...(offset > 0 && { headers: { range: `bytes=${offset}-` } }), scope: this.#scope(), expectStatus: [200, 206] };
          const response = await transport.request(request);
          url = response.url;
          const range = /^bytes (\d+)-/.exec(firstHeader(response.headers, 'content-range') ?? '');
          return { start: response.status === 206 && range !== null ? Number(range[1]) : 0, body: response.body };
        },
        resumable: (error) => !(error instanceof TsbuildError) && errorFromNetwork('GET', url, error).temporary,
        onBytes: (bytes) => event('progress', bytes),
        onResume: (bytes) => event('resume', bytes),
      }),
    );
    event('done', descriptor.size);
  }

  /**
   * Some registries answer MANIFEST_UNKNOWN for a repository they do not have; its tag list tells the
   * two apart. Returns the error for an unknown repository, or undefined when the repository exists.
   */
  async #unknownRepository(): Promise<RegistryError | undefined> {
    const tags = await this.#request({ method: 'GET', path: `/v2/${this.ref.repository}/tags/list?n=1`, expectStatus: [200, 404] }).catch(() => undefined);
    if (tags === undefined) return undefined;
    await tags.body.dump();
    if (tags.status !== 404) return undefined;
    return new RegistryError({
      codes: ['NAME_UNKNOWN'],
      status: 404,
      temporary: false,
      message: `name unknown: repository ${this.ref.repository} is not known to registry ${this.ref.registry} (looking for ${formatReference(this.ref)})`,
    });
  }

  #body(response: RegistryResponse, limit: number, label: string): Promise<Buffer> {
    return readBody(response.body, limit, label, (error) => errorFromNetwork('GET', response.url, error));
  }

  #manifestPath(target: string): string {
    return `/v2/${this.ref.repository}/manifests/${target}`;
  }

  #scope(): string {
    return `repository:${this.ref.repository}:pull`;
  }

  #request(req: Omit<RegistryRequest, 'scope'>): Promise<RegistryResponse> {
    return this.#session.use((transport) => transport.request({ ...req, scope: this.#scope() }));
  }
}
