/**
 * tsbuild, run as a user runs it: `node dist/cli/main.js build ... --output type=oci,dest=DIR`,
 * which writes a gzip-compressed OCI layout.
 *
 * Which directory is which: `$TSBUILD_CACHE_DIR` holds the pulled images (`images/`) and the
 * unpacked base layer chains (`rootfs/`); the step cache is `--cache-dir`. "Base already pulled"
 * means, as for dockerd and buildah whose pull also unpacks the layers, that `images/` and the
 * base chains in `rootfs/` are filled before the first measured build and kept. Every cold build
 * gets a new, empty `--cache-dir`, and after every build the chains it added to `rootfs/` (those of
 * its own step layers) are removed, so no build starts with anything an earlier build made. The
 * warm workload reuses one `--cache-dir` across its builds.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../../../test/support/repo-root.js';
import { runCommand } from '../command.js';
import type { Workload } from '../workloads.js';
import { imageName, type Builder, type BuildMeasure } from './builder.js';

const TIME = '/usr/bin/time';

interface OciIndex {
  manifests: Array<{ digest: string }>;
}
interface OciManifest {
  layers: Array<{ size: number }>;
}

export class TsbuildBuilder implements Builder {
  readonly name = 'tsbuild';
  readonly layerKind = 'gzip';
  description = 'tsbuild';
  private readonly cli = join(repoRoot(), 'dist/cli/main.js');
  private readonly cacheDir: string;
  private readonly env: NodeJS.ProcessEnv;
  private seededChains = new Set<string>();
  private builds = 0;

  /** `layerCounts`: how many layers each base has. */
  constructor(private readonly work: string, private readonly layerCounts: ReadonlyMap<string, number>) {
    this.cacheDir = join(work, 'cache');
    this.env = { ...process.env, TSBUILD_CACHE_DIR: this.cacheDir };
  }

  async prepare(bases: readonly string[]): Promise<void> {
    await mkdir(this.work, { recursive: true });
    for (const base of bases) {
      await runCommand(process.execPath, [this.cli, 'pull', base], { env: this.env });
      // A build with one RUN unpacks the base's layer chain, as `docker pull` and `buildah pull` do.
      const seed = join(this.work, 'seed');
      await mkdir(join(seed, 'context'), { recursive: true });
      await writeFile(join(seed, 'Dockerfile'), `FROM ${base}\nRUN true\n`);
      const seeded = await runCommand(process.execPath, [this.cli, 'build', '--progress', 'plain', '-f', join(seed, 'Dockerfile'), '--cache-dir', join(seed, 'build-cache'), '--output', `type=oci,dest=${join(seed, 'out')}`, join(seed, 'context')], { env: this.env });
      const isolation = /^note: (isolation: .*)$/m.exec(seeded.stderr)?.[1] ?? 'isolation not reported';
      this.description = `tsbuild ${await this.version()}, gzip OCI layout output, ${isolation}`;
      await rm(seed, { recursive: true, force: true });
    }
    this.seededChains = new Set(await this.chains());
  }

  async build(workload: Workload): Promise<BuildMeasure> {
    const run = this.builds++;
    const stepCache = workload.warm ? join(this.work, `warm-cache-${workload.id}`) : join(this.work, `build-cache-${run}`);
    const out = join(this.work, `out-${run}`);
    const rssFile = join(this.work, `rss-${run}`);
    try {
      // GNU time's %M is the largest peak RSS of the process and the children it waited for; the
      // RUN steps of these workloads are small shell commands, so it is the tsbuild process's.
      const args = ['-f', '%M', '-o', rssFile, process.execPath, this.cli, 'build', '-f', workload.dockerfile, '-t', imageName(workload), '--cache-dir', stepCache, '--output', `type=oci,dest=${out}`, workload.context];
      const { seconds } = await runCommand(TIME, args, { env: this.env });
      const peakRssBytes = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop()) * 1024;
      return { seconds, peakRssBytes, layerBytes: await this.addedLayerBytes(out, workload.base) };
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(rssFile, { force: true });
      if (!workload.warm) await rm(stepCache, { recursive: true, force: true });
      await this.removeUnseededChains();
    }
  }

  private async version(): Promise<string> {
    return (JSON.parse(await readFile(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  }

  async close(): Promise<void> {
    await rm(this.work, { recursive: true, force: true });
  }

  /** Total compressed size of the layers of the layout's image that come after the base's. */
  private async addedLayerBytes(layoutDir: string, base: string): Promise<number> {
    const blob = (digest: string): string => join(layoutDir, 'blobs', ...digest.split(':'));
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as OciIndex;
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as OciManifest;
    return manifest.layers.slice(this.layerCounts.get(base) ?? 0).reduce((sum, layer) => sum + layer.size, 0);
  }

  private async chains(): Promise<string[]> {
    return readdir(join(this.cacheDir, 'rootfs', 'sha256')).catch(() => []);
  }

  private async removeUnseededChains(): Promise<void> {
    for (const chain of await this.chains()) {
      if (!this.seededChains.has(chain)) await rm(join(this.cacheDir, 'rootfs', 'sha256', chain), { recursive: true, force: true });
    }
  }
}
