/**
 * Builds full Image, ImageIndex and Layer objects from the few things a backend knows how to fetch
 * (a manifest's bytes, a blob by descriptor). Everything else is derived on first use and kept.
 */
import { decompressStream } from './compression.js';
import { digestOfStream, sha256Digest } from './digest.js';
import { TsbuildError, type ErrorCode } from './errors.js';
import type { Image, ImageIndex, Layer, LayerOrigin, Manifested, Opener } from './image.js';
import { parseImageConfig, parseManifestDocument, type ParsedDocument } from './manifest-document.js';
import { memo } from './memo.js';
import type { Descriptor, Digest, IndexManifest, Manifest } from './types.js';

/** What every backend supplies for a manifest or index document. */
export interface DocumentSource {
  /** Names the document in errors, e.g. `registry.example/app@sha256:…` or `layout:tag`. */
  readonly label: string;
  /** The error code for a malformed document (`MANIFEST_INVALID`, `LAYOUT`…). */
  readonly errorCode: ErrorCode;
  /** The document's bytes; the source checks them against `digest` when it has one. */
  rawManifest(): Promise<Buffer>;
  /** The digest the document was asked for by, when known. */
  readonly digest?: Digest;
  /** The media type it was listed or served with, used when the document does not state its own. */
  readonly declaredMediaType?: string;
}

export interface ImageSource extends DocumentSource {
  /** The config blob named by the manifest, checked against its digest. */
  rawConfig(descriptor: Descriptor): Promise<Buffer>;
  /** The layer at one position of the manifest; nothing should be fetched until it is read. */
  layer(descriptor: Descriptor, diffId: Digest): Layer;
}

export interface IndexSource extends DocumentSource {
  /** The image, or nested index, behind one entry of this index. */
  image(descriptor: Descriptor): Promise<Image>;
  imageIndex(descriptor: Descriptor): Promise<ImageIndex>;
}

function documentOf(source: DocumentSource, kind: ParsedDocument['kind']): Manifested & { parsed(): Promise<ParsedDocument> } {
  const raw = memo(source.rawManifest.bind(source));
  const parsed = memo(async () => {
    const doc = parseManifestDocument(await raw(), source.declaredMediaType, source.label, source.errorCode);
    if (doc.kind !== kind) {
      throw new TsbuildError(source.errorCode, `${source.label} is an image ${doc.kind === 'index' ? 'index' : 'manifest'}, not an image ${kind}`);
    }
    return doc;
  });
  const digest = async (): Promise<Digest> => source.digest ?? sha256Digest(await raw());
  const size = async (): Promise<number> => (await raw()).length;
  const mediaType = async (): Promise<string> => (await parsed()).mediaType;
  return {
    parsed,
    rawManifest: raw,
    digest,
    size,
    mediaType,
    descriptor: async () => ({ mediaType: await mediaType(), digest: await digest(), size: await size() }),
    toJSON: () => source.label,
  };
}

/** An Image over a manifest source: the manifest, config and layer list are read once, on first use. */
export function lazyImage(source: ImageSource): Image {
  const document = documentOf(source, 'manifest');
  const manifest = async (): Promise<Manifest> => ((await document.parsed()) as { manifest: Manifest }).manifest;
  const rawConfig = memo(async () => source.rawConfig((await manifest()).config));
  const config = memo(async () => parseImageConfig(await rawConfig(), await manifest(), source.label, source.errorCode));
  const layers = memo(async () => {
    const diffIds = (await config()).rootfs.diff_ids;
    return (await manifest()).layers.map((descriptor, i) => source.layer(descriptor, diffIds[i] as Digest));
  });
  const { rawManifest, digest, size, mediaType, descriptor, toJSON } = document;
  return { rawManifest, digest, size, mediaType, descriptor, toJSON, manifest, rawConfig, config, layers };
}

/** An ImageIndex over an index source; children are resolved through the source when asked for. */
export function lazyIndex(source: IndexSource): ImageIndex {
  const document = documentOf(source, 'index');
  const indexManifest = async (): Promise<IndexManifest> => ((await document.parsed()) as { index: IndexManifest }).index;
  const entry = async (digest: Digest): Promise<Descriptor> => {
    const found = (await indexManifest()).manifests.find((d) => d.digest === digest);
    if (found === undefined) throw new TsbuildError('IMAGE_NOT_FOUND', `${source.label} lists no manifest ${digest}`);
    return found;
  };
  const { rawManifest, digest, size, mediaType, descriptor, toJSON } = document;
  return {
    rawManifest,
    digest,
    size,
    mediaType,
    descriptor,
    toJSON,
    indexManifest,
    image: async (d) => source.image(await entry(d)),
    imageIndex: async (d) => source.imageIndex(await entry(d)),
  };
}

export interface BlobLayerSource {
  /** The layer as its manifest lists it. */
  readonly descriptor: Descriptor;
  /** The diff_id, when the config already said; otherwise computed by reading the layer once. */
  readonly diffId?: Digest;
  /** Opens the stored blob, verified against `descriptor.digest`. */
  readonly open: Opener;
  /** A local file holding the stored blob, if there is one. */
  readonly localPath?: () => Promise<string | undefined>;
  /** The registry repository the blob comes from, if it is remote. */
  readonly origin?: LayerOrigin;
}

/** A Layer over a stored (possibly compressed) blob; the compression is recognised by its magic bytes. */
export function blobLayer(source: BlobLayerSource): Layer {
  const { descriptor } = source;
  const uncompressed = async () => decompressStream(await source.open());
  const known = source.diffId;
  const diffId = known !== undefined ? async () => known : memo(async () => (await digestOfStream(await uncompressed())).digest);
  return {
    digest: async () => descriptor.digest,
    size: async () => descriptor.size,
    mediaType: async () => descriptor.mediaType,
    descriptor: async () => descriptor,
    diffId,
    compressed: source.open,
    uncompressed,
    ...(source.localPath !== undefined ? { localPath: source.localPath } : {}),
    ...(source.origin !== undefined ? { origin: source.origin } : {}),
  };
}
