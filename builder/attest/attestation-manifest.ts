/**
 * Attestations stored as BuildKit stores them (docs/attestations/attestation-storage.md): per image
 * manifest, one more manifest whose layers are in-toto statements, listed in the image index after
 * the images with platform `unknown/unknown` so no runtime ever picks it, and annotations naming
 * the image manifest it is about.
 */
import type { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type ImageConfig, type Manifest } from '../../layers/types.js';
import type { Statement } from './statement.js';

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const ATTESTATION_MANIFEST = 'attestation-manifest';

/** Writes the statements, their config and their manifest into `layout`; returns the manifest's index entry. */
export async function writeAttestationManifest(layout: OciLayout, image: Descriptor, statements: readonly Statement[]): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  for (const statement of statements) {
    const blob = await layout.writeJson(statement, IN_TOTO_MEDIA_TYPE);
    layers.push({ ...blob, annotations: { [PREDICATE_TYPE_ANNOTATION]: statement.predicateType } });
  }
  // Only there because a manifest needs a config; readers ignore it.
  const config: ImageConfig = { architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } };
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: await layout.writeJson(config, MediaType.ImageConfig), layers };
  const written = await layout.writeJson(manifest, MediaType.ImageManifest);
  return {
    ...written,
    annotations: { [REFERENCE_DIGEST_ANNOTATION]: image.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_MANIFEST },
    platform: { architecture: 'unknown', os: 'unknown' },
  };
}
