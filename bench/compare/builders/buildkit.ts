/**
 * BuildKit inside the docker.io dockerd: `DOCKER_BUILDKIT=1 docker build --network=host`, into
 * dockerd's image store (overlay2, layers kept uncompressed: the "no compression" case), which is
 * what a user of `docker build` gets. Cold builds pass `--no-cache` and follow a
 * `docker builder prune --all`, which also drops BuildKit's copy of the previously sent context;
 * the warm workload keeps the builder cache.
 */
import { join } from 'node:path';
import { Dockerd } from '../dockerd.js';
import type { Workload } from '../workloads.js';
import { imageName, type Builder, type BuildMeasure } from './builder.js';

export class BuildKitBuilder implements Builder {
  readonly name = 'BuildKit';
  readonly layerKind = 'unpacked';
  description = 'BuildKit';
  private daemon: Dockerd | undefined;
  private readonly baseSizes = new Map<string, number>();

  constructor(private readonly work: string, private readonly registryHost: string) {}

  async prepare(bases: readonly string[]): Promise<void> {
    this.daemon = await Dockerd.start(join(this.work, 'dockerd'), this.registryHost);
    const info = (await this.daemon.docker(['info', '--format', '{{.ServerVersion}} {{.Driver}}'])).stdout.trim().split(' ');
    this.description = `BuildKit in dockerd ${info[0]} (${info[1]} image store, runc)`;
    for (const base of bases) {
      await this.daemon.docker(['pull', '--quiet', base]);
      this.baseSizes.set(base, await this.imageSize(base));
    }
  }

  async build(workload: Workload): Promise<BuildMeasure> {
    const docker = this.running();
    const name = imageName(workload);
    if (!workload.warm) await docker.docker(['builder', 'prune', '--all', '--force']);
    const cacheFlags = workload.warm ? [] : ['--no-cache'];
    try {
      const { seconds } = await docker.docker(['build', '--quiet', '--network=host', ...cacheFlags, '-t', name, '-f', workload.dockerfile, workload.context]);
      return { seconds, layerBytes: (await this.imageSize(name)) - (this.baseSizes.get(workload.base) ?? 0) };
    } finally {
      if (!workload.warm) await docker.docker(['image', 'rm', '--force', name]).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.daemon?.stop();
  }

  private running(): Dockerd {
    if (this.daemon === undefined) throw new Error('dockerd is not running');
    return this.daemon;
  }

  /** The image's size as dockerd reports it: the bytes of its layers' files, unpacked. */
  private async imageSize(ref: string): Promise<number> {
    return Number((await this.running().docker(['image', 'inspect', '--format', '{{.Size}}', ref])).stdout.trim());
  }
}
