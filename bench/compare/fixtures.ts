/**
 * The base images every builder pulls: the test suite's Debian bookworm minbase and busybox
 * fixtures, pushed into Debian's docker-registry on 127.0.0.1 with skopeo.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { debianBookwormImage } from '../../test/support/debian-image.js';
import { writeBusyboxImage } from '../../test/support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../../test/support/registry.js';
import { runCommand } from './command.js';
import type { Bases } from './workloads.js';

export interface BaseImages {
  readonly registry: TestRegistry;
  readonly refs: Bases;
  /** How many layers each base has, by reference: the layers of a built image after these are the build's own. */
  readonly layerCounts: ReadonlyMap<string, number>;
}

async function layerCount(layoutDir: string, tag: string): Promise<number> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (entry === undefined) throw new Error(`${layoutDir} has no image tagged ${tag}`);
  const manifest = JSON.parse(await readFile(join(layoutDir, 'blobs', ...entry.digest.split(':')), 'utf8')) as { layers: unknown[] };
  return manifest.layers.length;
}

/** Starts the registry and pushes both bases into it; `work` holds the busybox layout. */
export async function serveBaseImages(work: string): Promise<BaseImages> {
  const debian = await debianBookwormImage();
  const busyboxDir = join(work, 'busybox-layout');
  await writeBusyboxImage(busyboxDir, 'latest');
  const registry = await startRegistry();
  try {
    const refs: Bases = { debian: `${registry.host}/bench/debian:bookworm`, busybox: `${registry.host}/bench/busybox:latest` };
    const sources: Array<[string, string, string]> = [
      [debian.layoutDir, debian.tag, refs.debian],
      [busyboxDir, 'latest', refs.busybox],
    ];
    const layerCounts = new Map<string, number>();
    for (const [dir, tag, ref] of sources) {
      await runCommand('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${dir}:${tag}`, `docker://${ref}`]);
      layerCounts.set(ref, await layerCount(dir, tag));
    }
    return { registry, refs, layerCounts };
  } catch (error) {
    await registry.stop();
    throw error;
  }
}
