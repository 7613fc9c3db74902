import { TsbuildError } from '../../layers/errors.js';
import { readLayoutImage } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import type { Platform } from '../../layers/types.js';
import type { ResolvedImage } from '../model/sources.js';

/**
 * A base image the image cache already holds under `refName` (the canonical reference, as a pull
 * names it) for `platform`, with every blob present; undefined when any part is missing. This is the
 * cached resolution a build uses without `--pull`, so the registry is not asked again.
 */
export async function cachedBaseImage(cacheDir: string, refName: string, platform: Platform, source: ResolvedImage['source']): Promise<ResolvedImage | undefined> {
  try {
    const layout = await OciLayout.open(cacheDir, { create: false });
    const image = await readLayoutImage(layout, { tag: refName }, platform);
    const { layers } = await image.manifest();
    for (const layer of layers) if (!(await layout.has(layer.digest))) return undefined;
    return {
      image,
      ...(source ? { source } : {}),
      reference: refName,
      manifestDigest: await image.digest(),
      config: await image.config(),
      layers,
    };
  } catch (err) {
    if (err instanceof TsbuildError || (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
