import { TsbuildError } from './errors.js';
import type { Image, ImageIndex, ImageOrIndex, Layer } from './image.js';
import { blobLayer, lazyImage, lazyIndex } from './lazy-image.js';
import { INDEX_MEDIA_TYPES } from './manifest-document.js';
import type { OciLayout } from './oci-layout.js';
import { indexEntry, selectPlatform } from './select-platform.js';
import { RefNameAnnotation, type Descriptor, type Digest, type Platform } from './types.js';

/** Which image of a layout to read: a digest wins over a tag; neither means `latest`. */
export interface ImageSelector {
  tag?: string;
  digest?: Digest;
}

const SCHEME = 'oci-layout://';
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Indexes searched for a digest are nested at most this deep. */
const MAX_DEPTH = 8;

/** Splits `oci-layout://DIR[:TAG][@sha256:HEX]` (the scheme is optional) into its parts. */
export function parseOciLayoutSource(source: string): { dir: string } & ImageSelector {
  let rest = source.startsWith(SCHEME) ? source.slice(SCHEME.length) : source;
  const result: ImageSelector = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    if (!DIGEST.test(digest)) throw new TsbuildError('LAYOUT', `invalid digest "${digest}" in "${source}"`);
    result.digest = digest as Digest;
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && TAG.test(rest.slice(colon + 1))) {
    result.tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (rest === '') throw new TsbuildError('LAYOUT', `no directory in OCI layout source "${source}"`);
  return { dir: rest, ...result };
}

/** A manifest or index blob of the layout, checked against the descriptor's size (its digest is checked on read). */
async function readDocument(layout: OciLayout, descriptor: Descriptor): Promise<Buffer> {
  const bytes = await layout.readBlob(descriptor.digest);
  if (bytes.length !== descriptor.size) {
    throw new TsbuildError('LAYOUT', `blob ${descriptor.digest} in OCI layout ${layout.dir} has ${bytes.length} bytes, its descriptor says ${descriptor.size}`);
  }
  return bytes;
}

function documentSource(layout: OciLayout, descriptor: Descriptor) {
  return {
    label: `${descriptor.digest} in OCI layout ${layout.dir}`,
    errorCode: 'LAYOUT' as const,
    digest: descriptor.digest,
    declaredMediaType: descriptor.mediaType,
    rawManifest: () => readDocument(layout, descriptor),
  };
}

/**
 * Gives the layer an image lists with this descriptor and diff_id when the caller already has it
 * (one just built, a base image's remote layer), in place of the layout's blob file.
 */
export type LayerLookup = (descriptor: Descriptor, diffId: Digest) => Layer | undefined;

/**
 * The image whose manifest the layout holds under `descriptor`; its layers are the layout's blob
 * files, or those `known` gives.
 */
export function layoutImage(layout: OciLayout, descriptor: Descriptor, known?: LayerLookup): Image {
  return lazyImage({
    ...documentSource(layout, descriptor),
    rawConfig: (config) => readDocument(layout, config),
    layer: (layer, diffId) =>
      known?.(layer, diffId) ??
      blobLayer({
        descriptor: layer,
        diffId,
        open: async () => layout.openBlob(layer.digest),
        localPath: async () => layout.path(layer.digest),
      }),
  });
}

/** The index the layout holds under `descriptor`; its entries are read from the same layout. */
export function layoutIndex(layout: OciLayout, descriptor: Descriptor, known?: LayerLookup): ImageIndex {
  return lazyIndex({
    ...documentSource(layout, descriptor),
    image: async (entry) => layoutImage(layout, entry, known),
    imageIndex: async (entry) => layoutIndex(layout, entry, known),
  });
}

/** The image or index the layout holds under `descriptor`, as its media type says. */
export function layoutItem(layout: OciLayout, descriptor: Descriptor, known?: LayerLookup): ImageOrIndex {
  return INDEX_MEDIA_TYPES.has(descriptor.mediaType)
    ? { kind: 'index', index: layoutIndex(layout, descriptor, known) }
    : { kind: 'image', image: layoutImage(layout, descriptor, known) };
}

/** The whole layout as an index: its `index.json`, whose entries are the layout's images and indexes. */
export function layoutRootIndex(layout: OciLayout): ImageIndex {
  return lazyIndex({
    label: `OCI layout ${layout.dir}`,
    errorCode: 'LAYOUT' as const,
    rawManifest: async () => Buffer.from(JSON.stringify(await layout.readIndex()), 'utf8'),
    image: async (entry) => layoutImage(layout, entry),
    imageIndex: async (entry) => layoutIndex(layout, entry),
  });
}

/**
 * Reads one image out of an OCI layout: picks the index entry by digest (searching nested indexes
 * too) or by its ref.name tag, and descends through OCI indexes or Docker manifest lists to the
 * manifest for `platform`.
 */
export async function readLayoutImage(layout: OciLayout, selector: ImageSelector, platform: Platform): Promise<Image> {
  const { root, label } = await selectLayoutRoot(layout, selector);
  return selectPlatform(root, platform, label, 'LAYOUT');
}

/** The image or index named by the selector, and a label for messages. */
export async function selectLayoutRoot(layout: OciLayout, selector: ImageSelector): Promise<{ root: ImageOrIndex; label: string }> {
  const top = layoutRootIndex(layout);
  const entries = (await top.indexManifest()).manifests;
  if (selector.digest !== undefined) {
    const found = await findDigest(layout, top, selector.digest, 0);
    if (found === undefined) throw new TsbuildError('IMAGE_NOT_FOUND', `OCI layout ${layout.dir} has no manifest ${selector.digest}`);
    return { root: found, label: `${layout.dir}@${selector.digest}` };
  }
  const tag = selector.tag ?? 'latest';
  const tagged = entries.filter((entry) => entry.annotations?.[RefNameAnnotation] === tag);
  if (tagged.length === 0 && selector.tag === undefined && entries.length === 1) {
    // No tag asked for and only one image: that is the one meant.
    return { root: await indexEntry(top, entries[0] as Descriptor, 'LAYOUT'), label: layout.dir };
  }
  const first = tagged[0];
  if (first === undefined) {
    const tags = entries.flatMap((entry) => entry.annotations?.[RefNameAnnotation] ?? []);
    const known = tags.length > 0 ? `tags: ${tags.join(', ')}` : 'it has no tagged images';
    throw new TsbuildError('IMAGE_NOT_FOUND', `OCI layout ${layout.dir} has no image tagged "${tag}" (${known})`);
  }
  if (tagged.some((entry) => entry.digest !== first.digest)) {
    throw new TsbuildError('LAYOUT', `OCI layout ${layout.dir} lists different images under the tag "${tag}"`);
  }
  return { root: await indexEntry(top, first, 'LAYOUT'), label: `${layout.dir}:${tag}` };
}

/** The entry with `digest` in `index` or, recursively, in the indexes it lists. */
async function findDigest(layout: OciLayout, index: ImageIndex, digest: Digest, depth: number): Promise<ImageOrIndex | undefined> {
  if (depth > MAX_DEPTH) throw new TsbuildError('LAYOUT', `OCI layout ${layout.dir}: indexes nested deeper than ${MAX_DEPTH} levels`);
  const entries = (await index.indexManifest()).manifests;
  const direct = entries.find((entry) => entry.digest === digest);
  if (direct !== undefined) return indexEntry(index, direct, 'LAYOUT');
  for (const entry of entries) {
    const child = await indexEntry(index, entry, 'LAYOUT');
    if (child.kind !== 'index') continue;
    const found = await findDigest(layout, child.index, digest, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}
