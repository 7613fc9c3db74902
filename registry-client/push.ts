import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough, Readable, Transform } from 'node:stream';
import { TsbuildError } from '../layers/errors.js';
import type { ImageOrIndex, LayerOrigin, Opener } from '../layers/image.js';
import { indexEntry } from '../layers/select-platform.js';
import type { Descriptor, Digest } from '../layers/types.js';
import { forEachLimited } from '../layers/concurrency.js';
import { RegistryError } from './errors.js';
import { firstHeader } from './http-body.js';
import type { ProgressListener, TransferEvent } from './progress.js';
import { formatReference, type ImageReference } from './reference.js';
import { withRegistry, type RegistryAccess } from './session.js';
import type { RegistryRequest, RegistryResponse, RegistryTransport } from './transport.js';

export interface PushOptions extends RegistryAccess {
  /** Blobs uploaded at once; default 3. */
  concurrency?: number;
  /** Blobs larger than this go up in chunked PATCH uploads, smaller ones in one PUT; default 16 MiB. */
  chunkThreshold?: number;
  /** Bytes per PATCH of a chunked upload (raised to the registry's minimum); default 16 MiB. */
  chunkSize?: number;
  /** How often one blob's upload is started over after the registry lost it; default 3. */
  uploadRestarts?: number;
  onProgress?: ProgressListener;
}

export interface PushResult {
  /** The root as pushed: its digest is the image's (or index's) digest on every target. */
  descriptor: Descriptor;
  /** The targets pushed, formatted. */
  references: string[];
}

const DEFAULT_CHUNK = 16 * 1024 * 1024;
/** Upload errors after which the session is gone or out of step: start a fresh one. */
const LOST_UPLOAD = new Set(['BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'RANGE_INVALID', 'DIGEST_INVALID', 'SIZE_INVALID']);

/** One manifest or index of the pushed graph, children before parents. */
interface ManifestNode {
  descriptor: Descriptor;
  bytes: Buffer;
  mediaType: string;
}

/** A config or layer to send: where its bytes come from. */
interface BlobSource {
  descriptor: Descriptor;
  open: Opener;
  /** A local file with the blob, for ranged reads of chunked uploads; asked for only when the blob is uploaded. */
  file?: () => Promise<string | undefined>;
  /** The repository a layer pulled from a registry is stored in. */
  origin?: LayerOrigin;
}

/** What a root references, read and checked complete (as far as local files go) before anything is sent. */
interface PushPlan {
  root: ManifestNode;
  /** Manifests below the root, each after the manifests it lists. */
  children: ManifestNode[];
  /** Configs and layers, each once. */
  blobs: BlobSource[];
}

/**
 * Pushes a manifest or index and everything it references to every target: blobs first (skipping
 * those the registry has, mounting those another repository has, uploading the rest), then the
 * manifests below the root, then the root under each target's tag. A manifest is only sent after
 * everything it references is in the repository. Returns the root's descriptor.
 */
export async function pushImage(targets: readonly ImageReference[], source: ImageOrIndex, options: PushOptions = {}): Promise<PushResult> {
  if (targets.length === 0) throw new TsbuildError('PUSH', 'push: no target references');
  const plan = await planPush(source);
  for (const target of targets) {
    if (target.digest !== undefined && target.digest !== plan.root.descriptor.digest) {
      throw new TsbuildError('PUSH', `push: ${formatReference(target)} names a digest, but the image's digest is ${plan.root.descriptor.digest}`);
    }
  }
  // One push per repository, in the order first named; its tags all get the root.
  const groups = new Map<string, { registry: string; repository: string; refs: ImageReference[] }>();
  for (const target of targets) {
    const key = `${target.registry}/${target.repository}`;
    const group = groups.get(key) ?? { registry: target.registry, repository: target.repository, refs: [] };
    group.refs.push(target);
    groups.set(key, group);
  }
  const pushedRepos = new Map<string, string>();
  for (const group of groups.values()) {
    const earlier = pushedRepos.get(group.registry);
    // A layer whose origin is on this registry is mounted from there; within one push, blobs sent
    // to one repository are mounted into the next ones.
    const mountFrom = ({ origin }: BlobSource): string | undefined => (origin?.registry === group.registry ? origin.repository : undefined) ?? earlier;
    await withRegistry(group.registry, options, (transport) =>
      new RepositoryPush(transport, group.registry, group.repository, options, mountFrom).push(plan, group.refs),
    );
    if (!pushedRepos.has(group.registry)) pushedRepos.set(group.registry, group.repository);
  }
  return { descriptor: plan.root.descriptor, references: targets.map(formatReference) };
}

/** Reads the graph under the root; fails before any upload if a layer's local file is missing or has another size. */
async function planPush(source: ImageOrIndex): Promise<PushPlan> {
  const children: ManifestNode[] = [];
  const blobs = new Map<Digest, BlobSource>();
  const visiting = new Set<Digest>();
  const load = async (item: ImageOrIndex, depth: number): Promise<ManifestNode> => {
    const node = item.kind === 'image' ? item.image : item.index;
    const descriptor = await node.descriptor();
    const label = descriptor.digest;
    if (depth > 4 || visiting.has(descriptor.digest)) throw new TsbuildError('PUSH', `push: ${label}: indexes nested too deep or in a cycle`);
    visiting.add(descriptor.digest);
    if (item.kind === 'index') {
      for (const entry of (await item.index.indexManifest()).manifests) {
        if (children.some((c) => c.descriptor.digest === entry.digest)) continue;
        children.push(await load(await indexEntry(item.index, entry, 'PUSH'), depth + 1));
      }
    } else {
      const { config } = await item.image.manifest();
      const configBytes = await item.image.rawConfig();
      blobs.set(config.digest, { descriptor: config, open: async () => Readable.from([configBytes]) });
      for (const layer of await item.image.layers()) {
        const blob = await layer.descriptor();
        // A layer stored in a registry is fetched only if it has to be uploaded; a local one is checked now.
        const path = layer.origin === undefined ? await layer.localPath?.() : undefined;
        if (path !== undefined) {
          const size = await stat(path).then((info) => info.size, () => undefined);
          if (size === undefined) throw new TsbuildError('PUSH', `push: blob ${blob.digest} of ${label} is missing (no file ${path})`);
          if (size !== blob.size) throw new TsbuildError('PUSH', `push: blob ${blob.digest} (${path}) has ${size} bytes, its descriptor says ${blob.size}`);
        }
        blobs.set(blob.digest, {
          descriptor: blob,
          open: () => layer.compressed(),
          ...(layer.localPath !== undefined && { file: () => layer.localPath!() }),
          ...(layer.origin !== undefined && { origin: layer.origin }),
        });
      }
    }
    visiting.delete(descriptor.digest);
    return { descriptor, bytes: await node.rawManifest(), mediaType: descriptor.mediaType };
  };
  const root = await load(source, 0);
  return { root, children, blobs: [...blobs.values()] };
}

/** Pushes one plan to one repository. */
class RepositoryPush {
  readonly #name: string;
  readonly #scope: string;
  /** The smallest PATCH the registry accepts (its `OCI-Chunk-Min-Length`). */
  #minChunk = 0;

  constructor(
    private readonly transport: RegistryTransport,
    registry: string,
    private readonly repo: string,
    private readonly options: PushOptions,
    private readonly mountFrom: (blob: BlobSource) => string | undefined,
  ) {
    this.#name = `${registry}/${repo}`;
    this.#scope = `repository:${repo}:pull,push`;
  }

  async push(plan: PushPlan, refs: readonly ImageReference[]): Promise<void> {
    await forEachLimited(plan.blobs, this.options.concurrency ?? 3, (blob) => this.#pushBlob(blob));
    for (const child of plan.children) await this.#putManifest(child, child.descriptor.digest);
    const tags = [...new Set(refs.map((ref) => ref.tag ?? plan.root.descriptor.digest))];
    for (const tag of tags) await this.#putManifest(plan.root, tag);
  }

  async #pushBlob(source: BlobSource): Promise<void> {
    const blob = source.descriptor;
    const event = (phase: TransferEvent['phase'], bytes: number, from?: string): void =>
      this.options.onProgress?.({ direction: 'push', repository: this.#name, digest: blob.digest, mediaType: blob.mediaType, phase, bytes, total: blob.size, ...(from !== undefined && { from }) });
    if (await this.#blobExists(blob)) {
      event('exists', blob.size);
      return;
    }
    let session: URL | undefined;
    const from = this.mountFrom(source);
    if (from !== undefined && from !== this.repo) {
      const mount = await this.#request({
        method: 'POST',
        path: `/v2/${this.repo}/blobs/uploads/?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(from)}`,
        scope: [this.#scope, `repository:${from}:pull`],
        resendable: true,
        expectStatus: [201, 202],
      });
      await mount.body.dump();
      if (mount.status === 201) {
        event('mounted', blob.size, from);
        return;
      }
      session = this.#location(mount); // the registry could not mount: it opened an upload instead
    }
    const restarts = this.options.uploadRestarts ?? 3;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#upload(source, session ?? (await this.#startUpload()), event);
        event('done', blob.size);
        return;
      } catch (error) {
        session = undefined;
        if (!(error instanceof RegistryError) || !isLostUpload(error) || attempt >= restarts) throw error;
        // The upload may have completed although its answer was lost.
        if (await this.#blobExists(blob)) {
          event('done', blob.size);
          return;
        }
        event('resume', 0);
      }
    }
  }

  async #upload(source: BlobSource, location: URL, event: (phase: TransferEvent['phase'], bytes: number) => void): Promise<void> {
    const blob = source.descriptor;
    event('start', 0);
    const threshold = this.options.chunkThreshold ?? DEFAULT_CHUNK;
    if (blob.size <= threshold) {
      // Monolithic: the whole blob in the closing PUT; the transport re-sends it after a dropped connection.
      const done = await this.#request({
        method: 'PUT',
        path: withDigest(location, blob.digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: () => counted(opened(source.open), (bytes) => event('progress', bytes)),
        expectStatus: [201],
      });
      await done.body.dump();
      this.#checkDigest(done, blob.digest);
      return;
    }
    const path = await source.file?.();
    const chunk = Math.max(this.options.chunkSize ?? DEFAULT_CHUNK, this.#minChunk);
    let offset = 0;
    let resumes = 0;
    while (offset < blob.size) {
      const end = Math.min(offset + chunk, blob.size);
      const from = offset;
      try {
        const sent = await this.#request({
          method: 'PATCH',
          path: location.toString(),
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - from), 'content-range': `${from}-${end - 1}` },
          body: () => counted(byteRange(path, source.open, from, end), (bytes) => event('progress', from + bytes)),
          resendable: true,
          expectStatus: [202],
        });
        await sent.body.dump();
        location = this.#location(sent);
        offset = uploadedUpTo(sent) ?? end;
      } catch (error) {
        // Ask the registry how much of this upload it has and go on from there.
        if (!(error instanceof RegistryError) || !(isLostUpload(error) || error.temporary) || resumes >= (this.options.uploadRestarts ?? 3)) throw error;
        resumes++;
        const status = await this.#request({ method: 'GET', path: location.toString(), expectStatus: [204] });
        await status.body.dump();
        location = this.#location(status);
        offset = uploadedUpTo(status) ?? 0;
        event('resume', offset);
      }
    }
    const done = await this.#request({
      method: 'PUT',
      path: withDigest(location, blob.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': '0' },
      expectStatus: [201],
    });
    await done.body.dump();
    this.#checkDigest(done, blob.digest);
  }

  async #startUpload(): Promise<URL> {
    const started = await this.#request({ method: 'POST', path: `/v2/${this.repo}/blobs/uploads/`, resendable: true, expectStatus: [202] });
    await started.body.dump();
    const minimum = Number(header(started, 'oci-chunk-min-length'));
    if (Number.isSafeInteger(minimum) && minimum > this.#minChunk) this.#minChunk = minimum;
    return this.#location(started);
  }

  async #blobExists(blob: Descriptor): Promise<boolean> {
    const head = await this.#request({ method: 'HEAD', path: `/v2/${this.repo}/blobs/${blob.digest}`, expectStatus: [200, 404] });
    await head.body.dump();
    if (head.status !== 200) return false;
    const length = header(head, 'content-length');
    return length === undefined || Number(length) === blob.size;
  }

  async #putManifest(node: ManifestNode, reference: string): Promise<void> {
    const put = await this.#request({
      method: 'PUT',
      path: `/v2/${this.repo}/manifests/${reference}`,
      headers: { 'content-type': node.mediaType, 'content-length': String(node.bytes.length) },
      body: () => node.bytes,
      expectStatus: [201],
    });
    await put.body.dump();
    this.#checkDigest(put, node.descriptor.digest);
  }

  #checkDigest(response: RegistryResponse, expected: Digest): void {
    const said = header(response, 'docker-content-digest');
    if (said !== undefined && said !== expected) {
      throw new RegistryError({ codes: ['DIGEST_INVALID'], status: response.status, temporary: false, message: `digest invalid: ${this.#name} stored ${said}, expected ${expected}` });
    }
  }

  #location(response: RegistryResponse): URL {
    const location = header(response, 'location');
    if (location === undefined) {
      throw new RegistryError({ codes: ['PROTOCOL'], status: response.status, temporary: false, message: `protocol: ${this.#name} answered an upload request without a Location` });
    }
    return new URL(location, response.url);
  }

  #request(req: Omit<RegistryRequest, 'scope'> & { scope?: RegistryRequest['scope'] }): Promise<RegistryResponse> {
    return this.transport.request({ scope: this.#scope, ...req });
  }
}

function isLostUpload(error: RegistryError): boolean {
  return error.status === 416 || error.errorCodes.some((code) => LOST_UPLOAD.has(code));
}

function header(response: RegistryResponse, name: string): string | undefined {
  return firstHeader(response.headers, name);
}

/** A stream that can be handed over at once, over the one `open` resolves to. */
function opened(open: Opener): Readable {
  const out = new PassThrough();
  open().then(
    (source) => {
      source.on('error', (error) => out.destroy(error));
      out.on('close', () => source.destroy());
      source.pipe(out);
    },
    (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return out;
}

/** Bytes `start` to `end` (exclusive) of a blob: read from its file when it has one, else skipped to in its stream. */
function byteRange(path: string | undefined, open: Opener, start: number, end: number): Readable {
  if (path !== undefined) return createReadStream(path, { start, end: end - 1 });
  let offset = 0;
  const slice = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const from = Math.max(start - offset, 0);
      const to = Math.min(end - offset, chunk.length);
      offset += chunk.length;
      callback(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
  const stream = opened(open);
  stream.on('error', (error) => slice.destroy(error));
  slice.on('close', () => stream.destroy());
  return stream.pipe(slice);
}

/** The upload URL with `digest=` added, keeping the registry's own query parameters. */
function withDigest(location: URL, digest: Digest): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/**
 * The offset after the bytes a registry has of an upload, from its `Range: 0-<last>` header.
 * `0-0` is read as nothing received: some registries send it for an empty upload.
 */
function uploadedUpTo(response: RegistryResponse): number | undefined {
  const match = /^(?:bytes=)?0-(\d+)$/.exec(header(response, 'range') ?? '');
  if (match === null) return undefined;
  const last = Number(match[1]);
  return last === 0 ? 0 : last + 1;
}

/** Passes a stream through, reporting the bytes that went by. */
function counted(source: Readable, onBytes: (bytes: number) => void): Readable {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onBytes(bytes);
      callback(null, chunk);
    },
  });
  source.on('error', (error) => counter.destroy(error));
  counter.on('close', () => source.destroy());
  return source.pipe(counter);
}
