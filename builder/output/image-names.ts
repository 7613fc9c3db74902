import { TsbuildError } from '../../layers/errors.js';
import { parseReference } from '../../registry-client/reference.js';

/** The annotation containerd and BuildKit put the full image name in. */
export const ImageNameAnnotation = 'io.containerd.image.name';

/**
 * A name to give the image (`-t` or an output's `name=`), checked and normalised as BuildKit does:
 * `app:1` is `docker.io/library/app:1`, a name without tag gets `:latest`. A digest is refused:
 * a name cannot say which digest an image it has not built yet will have.
 */
export function normalizedName(name: string): string {
  let reference;
  try {
    reference = parseReference(name);
  } catch (err) {
    throw new TsbuildError('BAD_REFERENCE', `invalid image name "${name}": ${(err as Error).message.replace(/^invalid image reference "[^"]*": /, '')}; use NAME[:TAG], e.g. app:1 or registry.example/team/app:1`);
  }
  if (reference.digest !== undefined) {
    throw new TsbuildError('BAD_REFERENCE', `invalid image name "${name}": a name given to the image being built cannot carry a digest; drop the @sha256:… part`);
  }
  return `${reference.registry}/${reference.repository}:${reference.tag ?? 'latest'}`;
}

/**
 * `org.opencontainers.image.ref.name` for a normalised name, as BuildKit's OCI exporter writes it
 * (after containerd): the tag alone, since the image-spec defines the ref name as a tag within the
 * layout; the full name goes into `io.containerd.image.name`.
 */
export function ociRefName(normalized: string): string {
  return normalized.slice(normalized.lastIndexOf(':') + 1);
}
