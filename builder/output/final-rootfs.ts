import type { RootfsCache } from '../rootfs/rootfs-cache.js';
import type { Platform } from '../../layers/types.js';
import type { AssembledImage } from './assemble.js';
import type { BuildArtifact } from './exporter.js';

/** One image's filesystem, unpacked: `dir` is undefined for an image without layers (an empty tree). */
export interface UnpackedImage {
  /** Where the tree goes in the output: '' for a single platform, else `os_arch[_variant]` as BuildKit splits platforms. */
  readonly prefix: string;
  readonly dir: string | undefined;
}

/**
 * The final filesystem of each image of the artifact, from the shared rootfs cache, which unpacks
 * layers with the image-spec semantics and never writes outside its own directory. The returned
 * directories are shared and must only be read.
 */
export async function unpackImages(artifact: BuildArtifact, cache: RootfsCache): Promise<UnpackedImage[]> {
  const multi = artifact.images.length > 1;
  const unpacked: UnpackedImage[] = [];
  for (const image of artifact.images) {
    unpacked.push({ prefix: multi ? platformDirName(image.platform) : '', dir: await unpackOne(cache, image) });
  }
  return unpacked;
}

async function unpackOne(cache: RootfsCache, image: AssembledImage): Promise<string | undefined> {
  return image.layers.length === 0 ? undefined : cache.unpackedChain(image.layers);
}

/** `linux_arm64_v8`: the directory BuildKit gives each platform of a multi-platform local or tar output. */
function platformDirName(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('_');
}
