import { TsbuildError } from '../../layers/errors.js';
import { readLayoutImage } from '../../layers/image-reader.js';
import { OciLayout } from '../../layers/oci-layout.js';
import type { Platform } from '../../layers/types.js';
import type { ResolvedImage } from '../plan/plan-types.js';

/**
 * A base image the image cache already holds under `refName` (the canonical reference, as a pull
 * names it) for `platform`, with every blob present; undefined when any part is missing. This is the
 * cached resolution a build uses without `--pull`, so the registry is not asked again.
 */
export async function cachedBaseImage(cacheDir: string, refName: string, platform: Platform, source: ResolvedImage['source']): Promise<ResolvedImage | undefined> {
  try {
    const layout = await OciLayout.open(cacheDir, { create: false });
    const image = await readLayoutImage(layout, { tag: refName }, platform);
    for (const layer of image.layers) if (!(await layout.has(layer.digest))) return undefined;
    return {
      layoutDir: layout.dir,
      ...(source ? { source } : {}),
      reference: refName,
      manifestDigest: image.manifestDescriptor.digest,
      config: image.config,
      layers: image.layers,
    };
  } catch (err) {
    if (err instanceof TsbuildError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
