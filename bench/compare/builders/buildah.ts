/**
 * Buildah with the vfs storage driver, in a private storage root: `buildah bud --isolation oci`
 * (runc, as tsbuild's and BuildKit's RUN steps use; chroot isolation would also work as root) with
 * host networking. Images stay in Buildah's store, uncompressed. Cold builds are Buildah's default
 * (no `--layers`: no step cache, one layer per build); the warm workload passes `--layers`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { runCommand } from '../command.js';
import type { Workload } from '../workloads.js';
import { imageName, type Builder, type BuildMeasure } from './builder.js';

const BUILDAH = '/usr/bin/buildah';

interface BuildahImage {
  /** The image's manifest as JSON text; for a built image its layers are uncompressed tars. */
  Manifest: string;
}

export class BuildahBuilder implements Builder {
  readonly name = 'Buildah';
  readonly layerKind = 'tar';
  description = 'Buildah';

  /** `layerCounts`: how many layers each base has. */
  constructor(private readonly work: string, private readonly layerCounts: ReadonlyMap<string, number>) {}

  async prepare(bases: readonly string[]): Promise<void> {
    await mkdir(this.work, { recursive: true });
    const version = (await runCommand(BUILDAH, ['--version'])).stdout.trim();
    this.description = `${version}, vfs storage, isolation oci (runc)`;
    for (const base of bases) await this.buildah(['pull', '--quiet', '--tls-verify=false', base]);
  }

  async build(workload: Workload): Promise<BuildMeasure> {
    const name = imageName(workload);
    try {
      const { seconds } = await this.buildah([
        'bud', '--quiet', '--isolation', 'oci', '--network', 'host', '--tls-verify=false', `--layers=${workload.warm}`,
        '-t', name, '-f', workload.dockerfile, workload.context,
      ]);
      return { seconds, layerBytes: await this.addedLayerBytes(name, workload.base) };
    } finally {
      if (!workload.warm) await this.buildah(['rmi', '--force', name]).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.buildah(['rm', '--all']).catch(() => undefined);
    const mounts = await mountsUnder(this.work);
    if (mounts.length > 0) throw new Error(`buildah left ${mounts.length} mounts under ${this.work}; not removing it`);
    await rm(this.work, { recursive: true, force: true });
  }

  private buildah(args: readonly string[]): ReturnType<typeof runCommand> {
    return runCommand(BUILDAH, ['--root', join(this.work, 'root'), '--runroot', join(this.work, 'runroot'), '--storage-driver', 'vfs', ...args]);
  }

  /** Total size of the image's layers after the base's, from the manifest Buildah keeps for it. */
  private async addedLayerBytes(ref: string, base: string): Promise<number> {
    const image = JSON.parse((await this.buildah(['inspect', '--type', 'image', ref])).stdout) as BuildahImage;
    const manifest = JSON.parse(image.Manifest) as { layers: Array<{ size: number }> };
    return manifest.layers.slice(this.layerCounts.get(base) ?? 0).reduce((sum, layer) => sum + layer.size, 0);
  }
}
