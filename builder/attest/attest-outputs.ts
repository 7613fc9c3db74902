import { TsbuildError } from '../../layers/errors.js';
import type { ExportTarget } from '../output/exporters.js';

/**
 * Checks, before the build, the outputs that are to carry attestations. They live in an image
 * index, which a docker-save archive cannot hold: `type=docker` is refused, as buildx refuses it.
 * `type=local` and `type=tar` write files, not an image, and get a note. Returns whether any
 * output will carry the attestations.
 */
export function checkAttestationTargets(targets: readonly ExportTarget[], note: (message: string) => void): boolean {
  if (targets.some((t) => t.type === 'docker')) {
    throw new TsbuildError(
      'BAD_OUTPUT',
      '--provenance and --sbom attach attestations in an image index, which type=docker (one image in a docker-save archive) cannot hold: use --output type=oci or type=registry, or drop --provenance/--sbom',
    );
  }
  for (const target of targets) {
    if (target.type === 'local' || target.type === 'tar') note(`type=${target.type} writes the image's files, not an image: no attestation is attached to it`);
  }
  return targets.some((t) => t.type === 'oci' || t.type === 'registry' || t.type === 'store');
}
