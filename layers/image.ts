/**
 * The image model: one small set of interfaces for an image wherever it lives (a registry, an OCI
 * layout, a docker archive, a build in progress). Every accessor is async and may fail, so an
 * implementation can be lazy: a remote image fetches a layer blob only when it is read.
 *
 * Blobs are reached through openers: each call returns a fresh stream over the same bytes, so a
 * layer can be read once for its digest and again for an upload. Streams fail (at the latest at
 * their end) when the bytes do not match the digest they were opened under.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Digest, ImageConfig, IndexManifest, Manifest } from './types.js';

/** Opens a new stream over the same bytes each time it is called. */
export type Opener = () => Promise<Readable>;

/** One layer of an image. */
export interface Layer {
  /** SHA-256 of the blob as stored (compressed). */
  digest(): Promise<Digest>;
  /** SHA-256 of the uncompressed tar: the image config's `rootfs.diff_ids` entry. */
  diffId(): Promise<Digest>;
  /** Bytes of the blob as stored. */
  size(): Promise<number>;
  mediaType(): Promise<string>;
  /** How a manifest lists this layer: digest, size and media type, plus annotations or urls the source gave. */
  descriptor(): Promise<Descriptor>;
  /** The blob as stored, verified against `digest()` as it streams. */
  compressed(): Promise<Readable>;
  /** The layer's tar, decompressed. */
  uncompressed(): Promise<Readable>;
  /**
   * A local file holding exactly the stored blob, when the layer has one (a layout blob, a layer
   * just written). Writers may hard-link or copy it rather than stream `compressed()`.
   */
  localPath?(): Promise<string | undefined>;
  /** Where a layer pulled from a registry is stored: a push to that registry can mount it rather than upload it. */
  readonly origin?: LayerOrigin;
}

/** A registry repository holding a layer blob. */
export interface LayerOrigin {
  /** `host[:port]`, as in an image reference. */
  readonly registry: string;
  readonly repository: string;
}

/** A manifest or index document, and how to name it. */
export interface Manifested {
  mediaType(): Promise<string>;
  /** The document's bytes exactly as stored or served: its digest is their SHA-256. */
  rawManifest(): Promise<Buffer>;
  digest(): Promise<Digest>;
  size(): Promise<number>;
  /** `{ mediaType, digest, size }` of the document, for an index entry or a push. */
  descriptor(): Promise<Descriptor>;
  /** What JSON.stringify shows: where the document is from (a printed plan names its base images so). */
  toJSON?(): string;
}

/** One platform's image: a manifest, its config, and its layers in order (base first). */
export interface Image extends Manifested {
  manifest(): Promise<Manifest>;
  /** The config blob's bytes as stored: its digest is `manifest().config.digest`. */
  rawConfig(): Promise<Buffer>;
  config(): Promise<ImageConfig>;
  /** One Layer per manifest layer, paired with the config's diff_id at the same position. */
  layers(): Promise<Layer[]>;
}

/** An image index (manifest list): descriptors of images and of nested indexes. */
export interface ImageIndex extends Manifested {
  indexManifest(): Promise<IndexManifest>;
  /** The image listed in this index under `digest`. */
  image(digest: Digest): Promise<Image>;
  /** The nested index listed in this index under `digest`. */
  imageIndex(digest: Digest): Promise<ImageIndex>;
}

/** What a reference or an index entry resolves to, when either kind may be there. */
export type ImageOrIndex = { readonly kind: 'image'; readonly image: Image } | { readonly kind: 'index'; readonly index: ImageIndex };
