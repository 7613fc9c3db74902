/**
 * New images and indexes made from existing ones: append layers, edit the config, list more
 * manifests. Nothing is computed until it is asked for, each result is computed once, and the
 * inputs are never changed. Documents are serialized as compact JSON in their keys' order.
 */
import { sha256Digest } from './digest.js';
import { TsbuildError } from './errors.js';
import type { Image, ImageIndex, ImageOrIndex, Layer, Manifested } from './image.js';
import { memo } from './memo.js';
import { MediaType, type Descriptor, type Digest, type HistoryEntry, type ImageConfig, type IndexManifest, type Manifest, type Platform } from './types.js';

/** A layer to append, with the history entry that describes it (an empty entry when absent). */
export interface Addendum {
  readonly layer: Layer;
  readonly history?: HistoryEntry;
}

/** An image or index to list in an index, with what its entry says beyond digest, size and media type. */
export interface IndexAddendum {
  readonly item: ImageOrIndex;
  readonly platform?: Platform;
  readonly annotations?: Record<string, string>;
}

/** A manifest-like document serialized on demand from the object `build` returns. */
function serialized(build: () => Promise<object>, mediaType: () => Promise<string>): Manifested {
  const rawManifest = memo(async () => Buffer.from(JSON.stringify(await build()), 'utf8'));
  const digest = async (): Promise<Digest> => sha256Digest(await rawManifest());
  const size = async (): Promise<number> => (await rawManifest()).length;
  return {
    rawManifest,
    digest,
    size,
    mediaType,
    descriptor: async () => ({ mediaType: await mediaType(), digest: await digest(), size: await size() }),
  };
}

/** An image whose manifest is `base`'s with a new config and, optionally, more layers. */
function derivedImage(base: Image, config: () => Promise<ImageConfig>, added: readonly Layer[]): Image {
  const rawConfig = memo(async () => Buffer.from(JSON.stringify(await config()), 'utf8'));
  const layers = memo(async () => [...(await base.layers()), ...added]);
  const manifest = memo(async (): Promise<Manifest> => {
    const previous = await base.manifest();
    const bytes = await rawConfig();
    const addedDescriptors = await Promise.all(added.map((layer) => layer.descriptor()));
    return {
      ...previous,
      config: { ...previous.config, digest: sha256Digest(bytes), size: bytes.length },
      layers: [...previous.layers, ...addedDescriptors],
    };
  });
  return { ...serialized(manifest, () => base.mediaType()), manifest, rawConfig, config, layers };
}

/** `base` with `addenda` appended, in order: each adds its layer, its diff_id and a history entry. */
export function appendLayers(base: Image, addenda: readonly Addendum[]): Image {
  const config = memo(async (): Promise<ImageConfig> => {
    const next = structuredClone(await base.config());
    const diffIds = await Promise.all(addenda.map((addendum) => addendum.layer.diffId()));
    next.rootfs = { ...next.rootfs, diff_ids: [...next.rootfs.diff_ids, ...diffIds] };
    next.history = [...(next.history ?? []), ...addenda.map((addendum) => ({ ...addendum.history }))];
    return next;
  });
  return derivedImage(base, config, addenda.map((addendum) => addendum.layer));
}

/**
 * `base` with the config `edit` returns. `edit` gets a copy it may change; it must keep
 * `rootfs.diff_ids`, which only `appendLayers` may change, so that config and layers agree.
 */
export function editConfig(base: Image, edit: (config: ImageConfig) => ImageConfig): Image {
  const config = memo(async (): Promise<ImageConfig> => {
    const previous = await base.config();
    const next = edit(structuredClone(previous));
    const before = previous.rootfs.diff_ids;
    const after = next.rootfs?.diff_ids ?? [];
    if (after.length !== before.length || after.some((id, i) => id !== before[i])) {
      throw new TsbuildError('INTERNAL', 'editing an image config must not change rootfs.diff_ids; append layers instead');
    }
    return next;
  });
  return derivedImage(base, config, []);
}

/** An image with no layers and an empty config, to build on (`FROM scratch`). */
export function emptyImage(): Image {
  const config = async (): Promise<ImageConfig> => ({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } });
  const rawConfig = memo(async () => Buffer.from(JSON.stringify(await config()), 'utf8'));
  const manifest = memo(async (): Promise<Manifest> => {
    const bytes = await rawConfig();
    return {
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      config: { mediaType: MediaType.ImageConfig, digest: sha256Digest(bytes), size: bytes.length },
      layers: [],
    };
  });
  return { ...serialized(manifest, async () => MediaType.ImageManifest), manifest, rawConfig, config, layers: async () => [] };
}

/** An index listing nothing, to append manifests to. */
export function emptyIndex(): ImageIndex {
  const indexManifest = async (): Promise<IndexManifest> => ({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] });
  const none = async (digest: Digest): Promise<never> => {
    throw new TsbuildError('IMAGE_NOT_FOUND', `the index lists no manifest ${digest}`);
  };
  return { ...serialized(indexManifest, async () => MediaType.ImageIndex), indexManifest, image: none, imageIndex: none };
}

/** `base` with one more entry per addendum, in order; the added images and indexes are its children. */
export function appendManifests(base: ImageIndex, addenda: readonly IndexAddendum[]): ImageIndex {
  const entries = memo(() =>
    Promise.all(
      addenda.map(async ({ item, platform, annotations }): Promise<Descriptor> => ({
        ...(await (item.kind === 'image' ? item.image : item.index).descriptor()),
        ...(platform !== undefined ? { platform } : {}),
        ...(annotations !== undefined ? { annotations } : {}),
      })),
    ),
  );
  const indexManifest = memo(async (): Promise<IndexManifest> => {
    const previous = await base.indexManifest();
    return { ...previous, manifests: [...previous.manifests, ...(await entries())] };
  });
  const added = async (digest: Digest, kind: ImageOrIndex['kind']): Promise<ImageOrIndex | undefined> => {
    const at = (await entries()).findIndex((entry) => entry.digest === digest);
    const item = addenda[at]?.item;
    return item?.kind === kind ? item : undefined;
  };
  return {
    ...serialized(indexManifest, () => base.mediaType()),
    indexManifest,
    image: async (digest) => {
      const item = await added(digest, 'image');
      return item?.kind === 'image' ? item.image : base.image(digest);
    },
    imageIndex: async (digest) => {
      const item = await added(digest, 'index');
      return item?.kind === 'index' ? item.index : base.imageIndex(digest);
    },
  };
}
