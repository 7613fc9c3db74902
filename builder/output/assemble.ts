import type { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type ImageConfig, type IndexManifest, type Manifest, type Platform } from '../../layers/types.js';
import type { BuiltImage } from '../exec/execute.js';
import type { ImageLayer } from '../model/image-layer.js';

/** One platform's finished image, its config and manifest stored in the work layout. */
export interface AssembledImage {
  readonly platform: Platform;
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly ImageLayer[];
}

export interface AssembleOptions {
  /** RFC 3339 time for the config's `created`; none when undefined. */
  readonly created?: string;
  /** `--label` values, applied over the Dockerfile's labels. */
  readonly labels: ReadonlyMap<string, string>;
}

/** Writes the image config and manifest of a built image into `layout`. */
export async function assembleImage(built: BuiltImage, options: AssembleOptions, layout: OciLayout): Promise<AssembledImage> {
  const { stage } = built;
  const platform = stage.platform;
  const containerConfig = { ...stage.config };
  if (options.labels.size > 0) containerConfig.Labels = { ...containerConfig.Labels, ...Object.fromEntries(options.labels) };
  const config: ImageConfig = {
    ...(options.created !== undefined ? { created: options.created } : {}),
    ...(stage.author !== undefined ? { author: stage.author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: built.layers.map((l) => l.diffId) },
    history: [...built.history],
  };
  const configDescriptor = await layout.writeJson(config, MediaType.ImageConfig);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ImageManifest,
    config: configDescriptor,
    layers: built.layers.map((l) => l.descriptor),
  };
  const manifestDescriptor = await layout.writeJson(manifest, MediaType.ImageManifest);
  return { platform, manifest: { ...manifestDescriptor, platform }, config: configDescriptor, layers: built.layers };
}

/** Writes an image index over several platforms' manifests. */
export async function assembleIndex(images: readonly AssembledImage[], layout: OciLayout): Promise<Descriptor> {
  const index: IndexManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ImageIndex,
    manifests: images.map((image) => image.manifest),
  };
  return layout.writeJson(index, MediaType.ImageIndex);
}
