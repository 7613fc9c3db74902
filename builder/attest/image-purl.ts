import { formatPlatform } from '../../layers/platform.js';
import type { Platform } from '../../layers/types.js';
import { packageUrl } from './package-url.js';

/**
 * An image reference as a `pkg:docker` purl, as BuildKit names images in attestations: Docker Hub
 * names in their short form (`pkg:docker/alpine@3.19`), others with their registry, the tag (or
 * else the digest) as the version, and the platform as a qualifier.
 */
export function imagePurl(reference: string, platform?: Platform): string {
  const at = reference.indexOf('@');
  const digest = at < 0 ? undefined : reference.slice(at + 1);
  let name = at < 0 ? reference : reference.slice(0, at);
  const colon = name.lastIndexOf(':');
  const tag = colon > name.lastIndexOf('/') ? name.slice(colon + 1) : undefined;
  if (tag !== undefined) name = name.slice(0, colon);
  name = name.replace(/^(?:docker\.io|index\.docker\.io)\//, '').replace(/^library\/(?=[^/]+$)/, '');
  const slash = name.lastIndexOf('/');
  return packageUrl({
    type: 'docker',
    ...(slash > 0 ? { namespace: name.slice(0, slash) } : {}),
    name: name.slice(slash + 1),
    version: tag ?? digest ?? 'latest',
    qualifiers: { platform: platform ? formatPlatform(platform) : undefined, digest: tag !== undefined ? digest : undefined },
  });
}
