import { OciLayout } from '../../layers/oci-layout.js';
import { RefNameAnnotation, type Digest } from '../../layers/types.js';

/**
 * The digest the image cache lists under `refName` (the canonical reference, as an earlier build
 * or pull resolved it), if any. Resolving that digest instead of the tag is the cached resolution
 * a build uses without `--pull`: no request to the registry unless a layer must be fetched.
 */
export async function cachedTagDigest(cacheDir: string, refName: string): Promise<Digest | undefined> {
  try {
    const layout = await OciLayout.open(cacheDir, { create: false });
    const entry = (await layout.readIndex()).manifests.find((m) => m.annotations?.[RefNameAnnotation] === refName);
    return entry !== undefined && (await layout.has(entry.digest)) ? entry.digest : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as Error).name === 'TsbuildError') return undefined;
    throw err;
  }
}
