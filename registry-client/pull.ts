import { sha256Digest } from '../layers/digest.js';
import { TsbuildError } from '../layers/errors.js';
import type { OciLayout } from '../layers/oci-layout.js';
import type { Descriptor, Digest, ImageConfig, Manifest, Platform } from '../layers/types.js';
import { BlobCache } from './blob-cache.js';
import { forEachLimited } from './concurrency.js';
import { errorFromNetwork, RegistryError } from './errors.js';
import { bareMediaType, checkDescriptor, MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT, parseManifestDocument, type ParsedDocument } from './manifest-types.js';
import { noMatchingPlatform, platformMatches } from '../layers/platform.js';
import type { ProgressListener, TransferEvent } from './progress.js';
import { formatReference, manifestTarget, type ImageReference } from './reference.js';
import { withRegistry, type RegistryAccess } from './session.js';
import type { RegistryResponse, RegistryTransport } from './transport.js';

export interface PullOptions extends RegistryAccess {
  /** The platform to select from a multi-platform image. */
  platform: Platform;
  /** The cache, or its directory (an OCI layout, created when missing). */
  cache: BlobCache | string;
  /** Layers downloaded at once; default 4. */
  concurrency?: number;
  onProgress?: ProgressListener;
}

export interface PulledImage {
  reference: ImageReference;
  /** The cache layout; the image is listed in its index.json under `refName`. */
  layout: OciLayout;
  /** The full reference, e.g. `registry.example.com/team/app:1`: read it back with `readLayoutImage(layout, { tag: refName }, platform)`. */
  refName: string;
  /** What the reference resolved to: an index or a manifest. */
  root: Descriptor;
  /** The selected platform's manifest (equal to `root` for a single-platform image). */
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  configDescriptor: Descriptor;
  config: ImageConfig;
  /** The layers, all in the cache. */
  layers: Descriptor[];
}

/** Indexes nested deeper than this are refused. */
const MAX_DEPTH = 4;
/** Image configs larger than this are refused (real ones are a few kB). */
const CONFIG_SIZE_LIMIT = 16 * 1024 * 1024;

/**
 * Pulls one platform's image into the cache: resolves the reference (a tag with a HEAD, so that a
 * cached manifest is not fetched again), selects the platform from an index, and downloads config
 * and layers, verifying each as it streams. Blobs already cached cost no network I/O.
 */
export async function pullImage(ref: ImageReference, options: PullOptions): Promise<PulledImage> {
  const cache = typeof options.cache === 'string' ? await BlobCache.open(options.cache) : options.cache;
  return withRegistry(ref.registry, options, (transport) => new Puller(ref, transport, cache, options).pull());
}

class Puller {
  readonly #repo: string;
  readonly #name: string;

  constructor(
    private readonly ref: ImageReference,
    private readonly transport: RegistryTransport,
    private readonly cache: BlobCache,
    private readonly options: PullOptions,
  ) {
    this.#repo = ref.repository;
    this.#name = `${ref.registry}/${ref.repository}`;
  }

  async pull(): Promise<PulledImage> {
    const label = formatReference(this.ref);
    const { descriptor: root, document } = await this.#resolve();
    const { descriptor: manifestDescriptor, manifest, config } = await this.#select(root, document, label);
    const layers = manifest.layers.map((layer) => checkDescriptor(layer, `${this.#name}@${manifestDescriptor.digest}`));
    await forEachLimited(layers, this.options.concurrency ?? 4, (layer) => this.#fetchBlob(layer));
    const refName = formatReference(this.ref);
    await this.cache.layout.addImage(root, [refName]);
    return {
      reference: this.ref,
      layout: this.cache.layout,
      refName,
      root,
      manifestDescriptor,
      manifest,
      configDescriptor: manifest.config,
      config,
      layers,
    };
  }

  /** The root manifest or index the reference names, from the cache when its digest is known and cached. */
  async #resolve(): Promise<{ descriptor: Descriptor; document: ParsedDocument }> {
    let digest = this.ref.digest;
    if (digest === undefined) {
      const head = await this.#request({ method: 'HEAD', path: this.#manifestPath(manifestTarget(this.ref)), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200, 404] });
      await head.body.dump();
      const said = header(head, 'docker-content-digest');
      if (head.status === 200 && said !== undefined && /^sha256:[0-9a-f]{64}$/.test(said)) digest = said as Digest;
    }
    if (digest !== undefined) {
      const cached = await this.#cachedDocument(digest);
      if (cached !== undefined) return cached;
    }
    // Fetch by digest when it is known (then the content is checked against it), else by tag.
    const target = digest ?? manifestTarget(this.ref);
    const response = await this.#request({ method: 'GET', path: this.#manifestPath(target), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200] }).catch(
      async (error: unknown) => {
        throw error instanceof RegistryError && error.code === 'MANIFEST_UNKNOWN' ? ((await this.#unknownRepository()) ?? error) : error;
      },
    );
    const label = `${this.#name}${digest !== undefined ? `@${digest}` : `:${target}`}`;
    const bytes = await readBody(response, MANIFEST_SIZE_LIMIT, label, 'GET');
    const computed = sha256Digest(bytes);
    const served = header(response, 'docker-content-digest');
    const expected = digest ?? (served !== undefined && served.startsWith('sha256:') ? (served as Digest) : computed);
    const document = parseManifestDocument(bytes, bareMediaType(response.headers['content-type']), label);
    const descriptor: Descriptor = { mediaType: document.mediaType, digest: expected, size: bytes.length };
    await this.cache.store(bytes, descriptor, `manifest ${label}`);
    return { descriptor, document };
  }

  /**
   * Some registries answer MANIFEST_UNKNOWN for a repository they do not have; its tag list tells the
   * two apart. Returns the error for an unknown repository, or undefined when the repository exists.
   */
  async #unknownRepository(): Promise<RegistryError | undefined> {
    const tags = await this.#request({ method: 'GET', path: `/v2/${this.#repo}/tags/list?n=1`, expectStatus: [200, 404] }).catch(() => undefined);
    if (tags === undefined) return undefined;
    await tags.body.dump();
    if (tags.status !== 404) return undefined;
    return new RegistryError({
      codes: ['NAME_UNKNOWN'],
      status: 404,
      temporary: false,
      message: `name unknown: repository ${this.#repo} is not known to registry ${this.ref.registry} (looking for ${formatReference(this.ref)})`,
    });
  }

  /** A manifest or index already cached under `digest`, verified. */
  async #cachedDocument(digest: Digest): Promise<{ descriptor: Descriptor; document: ParsedDocument } | undefined> {
    if (!(await this.cache.has(digest))) return undefined;
    const bytes = await this.cache.layout.readBlob(digest);
    const document = parseManifestDocument(bytes, undefined, `${this.#name}@${digest}`);
    return { descriptor: { mediaType: document.mediaType, digest, size: bytes.length }, document };
  }

  /**
   * Walks an index, in order, to the first manifest for the wanted platform, as `readLayoutImage`
   * does: entries stating another platform are skipped unread; entries without one are read and
   * their config decides.
   */
  async #select(root: Descriptor, document: ParsedDocument, label: string): Promise<{ descriptor: Descriptor; manifest: Manifest; config: ImageConfig }> {
    const wanted = this.options.platform;
    const seen: Platform[] = [];
    const search = async (descriptor: Descriptor, doc: ParsedDocument, depth: number): Promise<{ descriptor: Descriptor; manifest: Manifest; config: ImageConfig } | undefined> => {
      const where = `${this.#name}@${descriptor.digest}`;
      if (doc.kind === 'manifest') {
        const manifest = doc.json as unknown as Manifest;
        const configDescriptor = checkDescriptor(manifest.config, where);
        const config = await this.#config(configDescriptor, where);
        const platform = descriptor.platform ?? config;
        if (!platformMatches(platform, wanted)) {
          seen.push(platform);
          return undefined;
        }
        return { descriptor, manifest, config };
      }
      if (depth >= MAX_DEPTH) throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${where}: indexes nested deeper than ${MAX_DEPTH} levels`);
      for (const entry of (doc.json.manifests as unknown[]).map((e) => checkDescriptor(e, where))) {
        if (entry.platform !== undefined && !platformMatches(entry.platform, wanted)) {
          seen.push(entry.platform);
          continue;
        }
        const child = await this.#document(entry);
        const found = await search(entry, child, depth + 1);
        if (found !== undefined) return found;
      }
      return undefined;
    };
    const found = await search(root, document, 0);
    if (found === undefined) throw noMatchingPlatform(label, wanted, seen);
    return found;
  }

  /** A manifest or index named by a descriptor: from the cache, else fetched by digest and cached. */
  async #document(descriptor: Descriptor): Promise<ParsedDocument> {
    const label = `${this.#name}@${descriptor.digest}`;
    if (descriptor.size > MANIFEST_SIZE_LIMIT) throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} is larger than ${MANIFEST_SIZE_LIMIT} bytes`);
    let bytes = await this.cache.read(descriptor);
    if (bytes === undefined) {
      const response = await this.#request({ method: 'GET', path: this.#manifestPath(descriptor.digest), headers: { accept: MANIFEST_ACCEPT }, expectStatus: [200] });
      bytes = await readBody(response, descriptor.size, label, 'GET');
      await this.cache.store(bytes, descriptor, `manifest ${label}`);
    }
    return parseManifestDocument(bytes, descriptor.mediaType, label);
  }

  async #config(descriptor: Descriptor, where: string): Promise<ImageConfig> {
    if (descriptor.size > CONFIG_SIZE_LIMIT) throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${where} has a config of ${descriptor.size} bytes`);
    await this.#fetchBlob(descriptor);
    const config = await this.cache.layout.readJson<Partial<ImageConfig>>(descriptor.digest);
    if (typeof config !== 'object' || config === null || typeof config.os !== 'string' || typeof config.architecture !== 'string') {
      throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: the config ${descriptor.digest} of ${where} is not an image config (no os/architecture)`);
    }
    return config as ImageConfig;
  }

  /** Downloads a blob into the cache unless it is there, resuming broken bodies with Range requests. */
  async #fetchBlob(descriptor: Descriptor): Promise<void> {
    const event = (phase: TransferEvent['phase'], bytes: number): void =>
      this.options.onProgress?.({ direction: 'pull', repository: this.#name, digest: descriptor.digest, mediaType: descriptor.mediaType, phase, bytes, total: descriptor.size });
    if (await this.cache.has(descriptor.digest)) {
      event('cached', descriptor.size);
      return;
    }
    const path = `/v2/${this.#repo}/blobs/${descriptor.digest}`;
    let url = path;
    event('start', 0);
    await this.cache.download(descriptor, {
      label: `blob ${this.#name}@${descriptor.digest}`,
      open: async (offset) => {
        const response = await this.#request({ method: 'GET', path, ...(offset > 0 && { headers: { range: `bytes=${offset}-` } }), expectStatus: [200, 206] });
        url = response.url;
        const range = /^bytes (\d+)-/.exec(header(response, 'content-range') ?? '');
        return { start: response.status === 206 && range !== null ? Number(range[1]) : 0, body: response.body };
      },
      resumable: (error) => !(error instanceof TsbuildError) && errorFromNetwork('GET', url, error).temporary,
      onBytes: (bytes) => event('progress', bytes),
      onResume: (bytes) => event('resume', bytes),
    });
    event('done', descriptor.size);
  }

  #manifestPath(target: string): string {
    return `/v2/${this.#repo}/manifests/${target}`;
  }

  #request(req: Omit<Parameters<RegistryTransport['request']>[0], 'scope'>): Promise<RegistryResponse> {
    return this.transport.request({ ...req, scope: `repository:${this.#repo}:pull` });
  }
}

function header(response: RegistryResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A whole response body, refused beyond `limit` bytes; a broken body becomes a RegistryError. */
async function readBody(response: RegistryResponse, limit: number, label: string, method: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) {
        response.body.destroy();
        throw new TsbuildError('SIZE_MISMATCH', `${label} failed verification: more than the expected ${limit} bytes; nothing was cached`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof TsbuildError) throw error;
    throw errorFromNetwork(method, response.url, error);
  }
  return Buffer.concat(chunks);
}
