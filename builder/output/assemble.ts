import type { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type ImageConfig, type IndexManifest, type Manifest, type Platform } from '../../layers/types.js';
import type { BuiltImage } from '../exec/execute.js';
import type { ImageLayer } from '../model/image-layer.js';
import { ImageAnnotations } from './annotations.js';
import { ociLayerDescriptor } from './oci-media-types.js';

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
  /** `--annotation` values for the manifest and the descriptor pointing at it. */
  readonly annotations?: ImageAnnotations;
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
  const annotations = options.annotations ?? new ImageAnnotations();
  const manifestAnnotations = annotations.manifest(platform);
  // An OCI manifest lists every layer with an OCI media type, base layers pulled from a
  // Docker-format image included: the blobs stay the same, their descriptors change.
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ImageManifest,
    config: configDescriptor,
    layers: built.layers.map((l) => ociLayerDescriptor(l.descriptor)),
    ...(manifestAnnotations ? { annotations: manifestAnnotations } : {}),
  };
  const manifestDescriptor = await layout.writeJson(manifest, MediaType.ImageManifest);
  const descriptorAnnotations = annotations.manifestDescriptor(platform);
  return {
    platform,
    manifest: { ...manifestDescriptor, platform, ...(descriptorAnnotations ? { annotations: descriptorAnnotations } : {}) },
    config: configDescriptor,
    layers: built.layers,
  };
}

/**
 * Writes an image index over several platforms' manifests, with the `index` and `index-descriptor`
 * annotations; attestation manifests are listed after the images.
 */
export async function assembleIndex(images: readonly AssembledImage[], layout: OciLayout, annotations = new ImageAnnotations(), attestations: readonly Descriptor[] = []): Promise<Descriptor> {
  const indexAnnotations = annotations.index();
  const index: IndexManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ImageIndex,
    manifests: [...images.map((image) => image.manifest), ...attestations],
    ...(indexAnnotations ? { annotations: indexAnnotations } : {}),
  };
  const descriptor = await layout.writeJson(index, MediaType.ImageIndex);
  const descriptorAnnotations = annotations.indexDescriptor();
  return descriptorAnnotations ? { ...descriptor, annotations: descriptorAnnotations } : descriptor;
}
