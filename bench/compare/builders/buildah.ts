/**
 * Buildah with the vfs storage driver, in a private storage root: `buildah bud --isolation oci`
 * (runc, as tsbuild's and BuildKit's RUN steps use; chroot isolation would also work as root) with
 * host networking. Images stay in Buildah's store, uncompressed. Cold builds are Buildah's default
 * (no `--layers`: no step cache, one layer per build); the warm workload passes `--layers`.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsUnder } from '../../../builder/rootfs/mountinfo.js';
import { runCommand } from '../command.js';
import type { Workload } from '../workloads.js';
import { imageName, type Builder, type BuildMeasure } from './builder.js';

const BUILDAH = '/usr/bin/buildah';

interface ImageSize {
  size?: number;
}

export class BuildahBuilder implements Builder {
  readonly name = 'Buildah';
  readonly layerKind = 'uncompressed';
  private readonly baseSizes = new Map<string, number>();

  constructor(private readonly work: string) {}

  async prepare(bases: readonly string[]): Promise<void> {
    await mkdir(this.work, { recursive: true });
    for (const base of bases) {
      await this.buildah(['pull', '--quiet', '--tls-verify=false', base]);
      this.baseSizes.set(base, await this.imageSize(base));
    }
  }

  async build(workload: Workload): Promise<BuildMeasure> {
    const name = imageName(workload);
    try {
      const { seconds } = await this.buildah([
        'bud', '--quiet', '--isolation', 'oci', '--network', 'host', '--tls-verify=false', `--layers=${workload.warm}`,
        '-t', name, '-f', workload.dockerfile, workload.context,
      ]);
      return { seconds, layerBytes: (await this.imageSize(name)) - (this.baseSizes.get(workload.base) ?? 0) };
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

  /** The image's size as Buildah's store reports it (the sum of its layers, uncompressed). */
  private async imageSize(ref: string): Promise<number> {
    const images = JSON.parse((await this.buildah(['images', '--json', ref])).stdout) as ImageSize[];
    return images[0]?.size ?? Number.NaN;
  }
}
