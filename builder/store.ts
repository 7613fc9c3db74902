import { TsbuildError } from '../layers/errors.js';
import { readLayoutImage } from '../layers/layout-image.js';
import { OciLayout } from '../layers/oci-layout.js';
import { RefNameAnnotation, type Descriptor, type ImageConfig, type Manifest, type Platform } from '../layers/types.js';
import { hostPlatform } from './plan/platform.js';

export interface StoredImage {
  readonly name: string;
  readonly descriptor: Descriptor;
}

/** The tagged images of a local store (an OCI layout); an empty list when the store does not exist yet. */
export async function listImages(storeDir: string): Promise<StoredImage[]> {
  const layout = await OciLayout.open(storeDir, { create: false }).catch(() => undefined);
  if (!layout) return [];
  const index = await layout.readIndex();
  return index.manifests.flatMap((descriptor) => {
    const name = descriptor.annotations?.[RefNameAnnotation];
    return name !== undefined ? [{ name, descriptor }] : [];
  });
}

/** The manifest and config of a stored image, for the host platform when the name is an index. */
export async function inspectImage(storeDir: string, name: string, platform: Platform = hostPlatform()): Promise<{ manifest: Manifest; config: ImageConfig }> {
  const layout = await OciLayout.open(storeDir, { create: false }).catch(() => {
    throw new TsbuildError('IMAGE_NOT_FOUND', `no image store at ${storeDir}`);
  });
  const image = await readLayoutImage(layout, { tag: name }, platform);
  return { manifest: await image.manifest(), config: await image.config() };
}
