import type { ImageOrIndex } from '../../layers/image.js';
import { layoutItem, type LayerLookup } from '../../layers/layout-image.js';
import type { OciLayout } from '../../layers/oci-layout.js';
import { modelLayer } from '../model/image-layer.js';
import type { BuildArtifact } from './exporter.js';

/**
 * The artifact as the image model sees it: its image, or its index over platforms and
 * attestations, with manifests and configs read from `layout`. Its layers are the layout's blob
 * files, unless `layers` gives them.
 */
export function artifactItem(artifact: BuildArtifact, layout: OciLayout, layers?: LayerLookup): ImageOrIndex {
  return layoutItem(layout, artifact.root, layers);
}

/**
 * The artifact's layers where the build left them: a base image's layer keeps the repository it
 * was pulled from, so a push can skip or mount it, and its blob is fetched only to be uploaded.
 */
export function builtLayers(artifact: BuildArtifact): LayerLookup {
  const byDigest = new Map(
    artifact.images.flatMap((image) => image.layers).map((layer) => [layer.descriptor.digest, modelLayer(layer, artifact.layerOrigins.get(layer.descriptor.digest))]),
  );
  return (descriptor) => byDigest.get(descriptor.digest);
}
