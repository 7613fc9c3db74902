import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import tarStream from 'tar-stream';
import { detectCompression, SNIFF_BYTES } from './compression.js';
import { sha256Digest, VerifyingStream } from './digest.js';
import { TsbuildError } from './errors.js';
import type { Image } from './image.js';
import { blobLayer, lazyImage } from './lazy-image.js';
import { memo } from './memo.js';
import { MediaType, type Descriptor, type Digest, type Manifest } from './types.js';

/** `manifest.json` and configs are small; an archive claiming otherwise is refused. */
const DOCUMENT_LIMIT = 16 * 1024 * 1024;

interface ArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * The image a `docker save` archive holds: the one tagged `repoTag`, or its only one. An archive
 * has no registry manifest, so an OCI one is made up (each layer as stored in the archive) by
 * reading the layers once, on first use. A layer is read from the archive again when
 * it is opened, and checked against that manifest.
 */
export async function readDockerArchive(file: string, repoTag?: string): Promise<Image> {
  const label = `docker archive ${file}`;
  const fail = (why: string): TsbuildError => new TsbuildError('ARCHIVE', `${label}: ${why}`);
  const entries = parseArchiveManifest(await readEntry(file, 'manifest.json', fail), fail);
  const wanted = repoTag === undefined ? undefined : repoTag.lastIndexOf(':') > repoTag.lastIndexOf('/') ? repoTag : `${repoTag}:latest`;
  const entry = wanted === undefined ? (entries.length === 1 ? entries[0] : undefined) : entries.find((e) => e.RepoTags?.includes(wanted));
  if (entry === undefined) throw fail(wanted === undefined ? `it holds ${entries.length} images: name one` : `no image tagged ${wanted}`);
  /** Which archive file holds the layer with each digest. */
  const files = new Map<Digest, string>();
  const rawConfig = memo(() => readEntry(file, entry.Config, fail));
  const manifest = memo(async (): Promise<Manifest> => {
    const config = await rawConfig();
    const layers: Descriptor[] = [];
    for (const name of entry.Layers) {
      const layer = await describeLayer(await openEntry(file, name, fail));
      files.set(layer.digest, name);
      layers.push(layer);
    }
    return {
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      config: { mediaType: MediaType.ImageConfig, digest: sha256Digest(config), size: config.length },
      layers,
    };
  });
  return lazyImage({
    label,
    errorCode: 'ARCHIVE',
    rawManifest: async () => Buffer.from(JSON.stringify(await manifest()), 'utf8'),
    rawConfig: () => rawConfig(),
    layer: (descriptor, diffId) =>
      blobLayer({
        descriptor,
        diffId,
        open: async () => (await openEntry(file, files.get(descriptor.digest)!, fail)).pipe(new VerifyingStream(descriptor.digest, descriptor.size)),
      }),
  });
}

function parseArchiveManifest(bytes: Buffer, fail: (why: string) => TsbuildError): ArchiveEntry[] {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    value = undefined;
  }
  const valid = (e: Partial<ArchiveEntry> | null): boolean =>
    typeof e === 'object' && e !== null && typeof e.Config === 'string' && Array.isArray(e.Layers) && e.Layers.every((l) => typeof l === 'string');
  if (!Array.isArray(value) || !value.every(valid)) throw fail('manifest.json is not a list of images with Config and Layers');
  return value as ArchiveEntry[];
}

/** Digest, size and media type of a stored layer, read to its end. */
async function describeLayer(stored: Readable): Promise<Descriptor> {
  const hash = createHash('sha256');
  let size = 0;
  let head = Buffer.alloc(0);
  for await (const chunk of stored as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
    if (head.length < SNIFF_BYTES) head = Buffer.concat([head, chunk.subarray(0, SNIFF_BYTES - head.length)]);
  }
  const gzip = detectCompression(head) === 'gzip';
  return { mediaType: gzip ? MediaType.LayerGzip : MediaType.Layer, digest: `sha256:${hash.digest('hex')}`, size };
}

async function readEntry(file: string, name: string, fail: (why: string) => TsbuildError): Promise<Buffer> {
  const stream = await openEntry(file, name, fail, DOCUMENT_LIMIT);
  return buffer(stream);
}

/**
 * The content of the regular file `name` in the tar at `file`, as a stream; the archive is read up
 * to it. Fails if there is no such file, or if it is larger than `limit`.
 */
function openEntry(file: string, name: string, fail: (why: string) => TsbuildError, limit = Infinity): Promise<Readable> {
  const wanted = name.replace(/^\.\//, '');
  return new Promise((resolve, reject) => {
    const source = createReadStream(file);
    const extract = tarStream.extract();
    let found = false;
    source.on('error', (error) => extract.destroy(error));
    extract.on('error', (error) => {
      source.destroy();
      if (!found) reject(fail(`cannot read it: ${error.message}`));
    });
    extract.on('entry', (header, stream, next) => {
      if (found || header.name.replace(/^\.\//, '') !== wanted) {
        stream.on('end', next);
        stream.resume();
        return;
      }
      found = true;
      if (header.type !== 'file') reject(fail(`${name} is not a regular file`));
      else if ((header.size ?? 0) > limit) reject(fail(`${name} is larger than ${limit} bytes`));
      else {
        stream.on('end', () => source.destroy());
        resolve(stream as unknown as Readable);
        return;
      }
      source.destroy();
    });
    extract.on('finish', () => {
      if (!found) reject(fail(`it has no file ${name}`));
    });
    source.pipe(extract);
  });
}
