import { MediaType } from '../layers/types.js';

/** The Accept header of manifest requests: OCI and Docker schema 2 manifests and indexes. */
export const MANIFEST_ACCEPT = [MediaType.ImageIndex, MediaType.ImageManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

/** Registries may refuse larger manifests (distribution-spec); we refuse to read them. */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

/** A header's media type without parameters (`; charset=…`). */
export function bareMediaType(value: string | undefined): string | undefined {
  const bare = value?.split(';')[0]?.trim();
  return bare === undefined || bare === '' ? undefined : bare;
}
