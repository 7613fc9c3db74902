import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeDockerArchive } from '../../layers/docker-archive.js';
import { TsbuildError } from '../../layers/errors.js';
import { layoutImage } from '../../layers/layout-image.js';
import { writeLayoutTar } from '../../layers/layout-tar.js';
import { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import type { Workspace } from '../workspace/workspace.js';
import type { AssembledImage } from './assemble.js';
import { importBlob } from './copy-blobs.js';
import type { OutputSpec } from './output-spec.js';
import { pushBuiltImage, type RegistrySettings } from '../registry/registry-access.js';

/** A finished build: the root descriptor (a manifest, or an index over platforms) and its images. */
export interface BuildArtifact {
  readonly root: Descriptor;
  readonly images: readonly AssembledImage[];
  readonly tags: readonly string[];
  /** The registry and repository each pulled base layer came from. */
  readonly layerOrigins: ReadonlyMap<Digest, { readonly registry: string; readonly repository: string }>;
}

/** Where an artifact can be exported: an `--output`, or the default local store. */
export type ExportTarget = OutputSpec | { readonly type: 'store'; readonly dest: string };

/**
 * Gathers every blob of the artifact into the work layout (base layers come from their own
 * layouts, verified), so each exporter reads from one place.
 */
export async function gatherBlobs(artifact: BuildArtifact, workspace: Workspace): Promise<void> {
  for (const image of artifact.images) {
    for (const layer of image.layers) await importBlob(workspace.layout, layer.descriptor, await layer.blobPath(), true);
  }
}

/** Writes the artifact to one target and says where it went. Nothing is left half-written if this fails. */
export async function exportArtifact(artifact: BuildArtifact, target: ExportTarget, workspace: Workspace, registry: RegistrySettings): Promise<string> {
  if (target.type === 'registry') return exportToRegistry(artifact, target.name, workspace, registry);
  await exportToFiles(artifact, target, workspace);
  return `${target.type} ${target.dest}`;
}

async function exportToFiles(artifact: BuildArtifact, target: Exclude<ExportTarget, { type: 'registry' }>, workspace: Workspace): Promise<void> {
  switch (target.type) {
    case 'store':
      return exportToLayoutDir(artifact, path.resolve(target.dest), workspace);
    case 'oci':
      if (!target.tar) return exportToLayoutDir(artifact, path.resolve(target.dest), workspace);
      return exportToLayoutTar(artifact, path.resolve(target.dest), workspace);
    case 'docker':
      return exportToDockerArchive(artifact, path.resolve(target.dest), workspace);
  }
}

/** Pushes to `name`, or to every tag; the registry gets blobs first and the manifest or index last. */
async function exportToRegistry(artifact: BuildArtifact, name: string | undefined, workspace: Workspace, registry: RegistrySettings): Promise<string> {
  const names = name !== undefined ? [name] : artifact.tags;
  if (names.length === 0) throw new TsbuildError('OUTPUT', 'pushing needs a name: give -t NAME:TAG or --output type=registry,name=NAME:TAG');
  const layers = artifact.images.flatMap((image) => image.layers);
  const pushed = await pushBuiltImage(names, workspace.layout, artifact.root, layers, artifact.layerOrigins, registry);
  return `registry ${pushed.references.join(', ')}`;
}

function blobsOf(artifact: BuildArtifact): Descriptor[] {
  const blobs = artifact.images.flatMap((image) => [...image.layers.map((l) => l.descriptor), image.config, image.manifest]);
  return artifact.images.length > 1 ? [...blobs, artifact.root] : blobs;
}

async function copyArtifact(artifact: BuildArtifact, from: OciLayout, to: OciLayout): Promise<void> {
  for (const blob of blobsOf(artifact)) await importBlob(to, blob, from.path(blob.digest), false);
  await to.addImage(artifact.root, [...artifact.tags]);
}

/** Adds the image to a layout; a new layout is built beside its destination and renamed into place. */
async function exportToLayoutDir(artifact: BuildArtifact, dest: string, workspace: Workspace): Promise<void> {
  if (await exists(dest)) {
    await copyArtifact(artifact, workspace.layout, await OciLayout.open(dest, { create: false }));
    return;
  }
  const parent = path.dirname(dest);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(path.join(parent, `.${path.basename(dest)}.tsbuild-`));
  try {
    await copyArtifact(artifact, workspace.layout, await OciLayout.open(staging, { create: true }));
    await rename(staging, dest).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await copyArtifact(artifact, workspace.layout, await OciLayout.open(dest, { create: false }));
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

async function exportToLayoutTar(artifact: BuildArtifact, dest: string, workspace: Workspace): Promise<void> {
  const staging = await OciLayout.open(await workspace.newDir('oci-archive'), { create: true });
  await copyArtifact(artifact, workspace.layout, staging);
  await writeLayoutTar(staging, dest);
}

async function exportToDockerArchive(artifact: BuildArtifact, dest: string, workspace: Workspace): Promise<void> {
  if (artifact.images.length !== 1) {
    throw new TsbuildError('OUTPUT', 'type=docker holds one platform only; use type=oci for a multi-platform build');
  }
  const image = artifact.images[0]!;
  await writeDockerArchive(layoutImage(workspace.layout, image.manifest), artifact.tags, dest);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}
