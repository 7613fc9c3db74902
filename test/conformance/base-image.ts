/** The busybox base image the cases that need a shell build on, served by a registry on 127.0.0.1. */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import type { BaseReferences } from './cases.js';
import { baseSnapshot, type BaseSnapshot } from './snapshot.js';

const run = promisify(execFile);

export interface ServedBase {
  readonly registry: TestRegistry;
  /** `127.0.0.1:PORT/conformance/busybox:latest` and the same image with Docker media types. */
  readonly references: BaseReferences;
  /** The base's own tree and layers, subtracted from the tree of every image built on it. */
  readonly snapshot: BaseSnapshot;
  /** tsbuild's cache of pulled images, shared by the cases so the base is pulled once. */
  readonly imageCacheDir: string;
}

/**
 * Writes the busybox fixture into `work` with a second layer holding `/dev`, `/proc` and `/sys`, as
 * every real base image has them (a RUN step mounts there, and builders differ in what they leave
 * behind when those are missing), starts a registry and pushes the image into it.
 */
export async function serveBase(work: string): Promise<ServedBase> {
  const layout = join(work, 'busybox-layout');
  await writeBusyboxImage(layout, 'latest');
  const mountPoints = join(work, 'mount-points');
  for (const name of ['dev', 'proc', 'sys']) await mkdir(join(mountPoints, name), { recursive: true });
  await run('umoci', ['insert', '--image', `${layout}:latest`, '--history.created_by', 'mount points', mountPoints, '/']);
  const registry = await startRegistry();
  try {
    const references: BaseReferences = {
      BASE: `${registry.host}/conformance/busybox:latest`,
      BASE_DOCKER: `${registry.host}/conformance/busybox-docker:latest`,
    };
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:latest`, `docker://${references.BASE}`]);
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--format', 'v2s2', `oci:${layout}:latest`, `docker://${references.BASE_DOCKER}`]);
    return { registry, references, snapshot: await baseSnapshot(layout, 'latest', join(work, 'busybox-rootfs')), imageCacheDir: join(work, 'images') };
  } catch (error) {
    await registry.stop();
    throw error;
  }
}
