import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { writeToLayout } from '../../layers/layout-write.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { RefNameAnnotation, type Descriptor } from '../../layers/types.js';
import { artifactItem } from './artifact-image.js';
import type { BuildArtifact } from './exporter.js';
import { ImageNameAnnotation, ociRefName } from './image-names.js';

/** Lists the artifact's root in a layout's index.json. */
export type IndexUpdate = (layout: OciLayout, root: Descriptor) => Promise<void>;

/**
 * index.json entries as BuildKit writes them: one per name, with the normalised name in
 * `io.containerd.image.name` and its tag in `org.opencontainers.image.ref.name`. An entry with the
 * same pair of names is replaced; every other entry stays. Without names, `untagged` says what
 * the entry is called (BuildKit calls an unnamed image in a layout directory `latest`, and leaves
 * it unnamed in an archive).
 */
export function buildkitNames(names: readonly string[], untagged: 'latest' | 'unnamed'): IndexUpdate {
  return async (layout, root) => {
    const pairs: Array<{ image?: string; ref?: string }> =
      names.length > 0 ? names.map((image) => ({ image, ref: ociRefName(image) })) : [untagged === 'latest' ? { ref: 'latest' } : {}];
    await layout.updateIndex((index) => {
      let manifests = index.manifests;
      for (const { image, ref } of pairs) {
        const annotations = { ...root.annotations };
        delete annotations[ImageNameAnnotation];
        delete annotations[RefNameAnnotation];
        if (image !== undefined) annotations[ImageNameAnnotation] = image;
        if (ref !== undefined) annotations[RefNameAnnotation] = ref;
        const entry: Descriptor = { ...root, annotations };
        if (Object.keys(annotations).length === 0) delete entry.annotations;
        if (ref !== undefined) manifests = manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== ref || m.annotations?.[ImageNameAnnotation] !== image);
        manifests = [...manifests, entry];
      }
      return { ...index, manifests };
    });
  };
}

/** Copies the artifact with every blob it references from `from` into `to` and lists its root there. */
export async function copyArtifact(artifact: BuildArtifact, from: OciLayout, to: OciLayout, list: IndexUpdate): Promise<void> {
  await writeToLayout(to, artifactItem(artifact, from));
  await list(to, artifact.root);
}

/**
 * Adds the image to a layout directory; a new layout is built beside its destination and renamed
 * into place. The directory calls are made at once (each takes microseconds); only a staging
 * directory left by a failure is removed through the thread pool.
 */
export async function exportToLayoutDir(artifact: BuildArtifact, dest: string, from: OciLayout, list: IndexUpdate): Promise<void> {
  const found = destState(dest);
  if (found !== 'missing') {
    // An empty directory becomes a layout; anything else must already be one.
    await copyArtifact(artifact, from, await OciLayout.open(dest, { create: found === 'empty directory' }), list);
    return;
  }
  const parent = path.dirname(dest);
  mkdirSync(parent, { recursive: true });
  const staging = mkdtempSync(path.join(parent, `.${path.basename(dest)}.tsbuild-`));
  let renamed = false;
  try {
    await copyArtifact(artifact, from, await OciLayout.open(staging, { create: true }), list);
    try {
      renameSync(staging, dest);
      renamed = true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      await copyArtifact(artifact, from, await OciLayout.open(dest, { create: false }), list);
    }
  } finally {
    if (!renamed) await rm(staging, { recursive: true, force: true });
  }
}

/** What is at a destination path now (symlinks followed: dest is the user's own choice). */
export function destState(dest: string): 'missing' | 'file' | 'empty directory' | 'layout' | 'other directory' {
  const found = statSync(dest, { throwIfNoEntry: false });
  if (found === undefined) return 'missing';
  if (!found.isDirectory()) return 'file';
  if (existsSync(path.join(dest, 'oci-layout'))) return 'layout';
  return readdirSync(dest).length === 0 ? 'empty directory' : 'other directory';
}
