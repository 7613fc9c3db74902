import { TsbuildError } from '../../layers/errors.js';
import { MediaType, type Descriptor } from '../../layers/types.js';

/**
 * Docker's layer media types and the OCI ones that describe the same bytes. A layer pulled from a
 * Docker-format image keeps its blob; only the descriptor in our OCI manifest changes, so tools
 * that read OCI manifests strictly (umoci) accept it.
 */
const OCI_LAYER_TYPES: Readonly<Record<string, string>> = {
  'application/vnd.docker.image.rootfs.diff.tar': MediaType.Layer,
  [MediaType.DockerLayerGzip]: MediaType.LayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar.zstd': MediaType.LayerZstd,
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

const OCI_LAYER_MEDIA_TYPES = new Set<string>([
  MediaType.Layer,
  MediaType.LayerGzip,
  MediaType.LayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

/** The descriptor of a layer as an OCI image manifest lists it; the blob is the same. */
export function ociLayerDescriptor(descriptor: Descriptor): Descriptor {
  if (OCI_LAYER_MEDIA_TYPES.has(descriptor.mediaType)) return descriptor;
  const mediaType = OCI_LAYER_TYPES[descriptor.mediaType];
  if (mediaType === undefined) {
    throw new TsbuildError('OUTPUT', `layer ${descriptor.digest} has media type ${descriptor.mediaType}, which has no OCI image layer equivalent`);
  }
  return { ...descriptor, mediaType };
}
