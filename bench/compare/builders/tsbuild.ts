/**
 * tsbuild, run as a user runs it: `bin/tsbuild build --isolation MODE ... --output
 * type=oci,dest=DIR`, which writes a gzip-compressed OCI layout; one builder per `--isolation`
 * row, each started as its runner says (see tsbuild-runners.ts).
 *
 * Which directory is which: `$TSBUILD_CACHE_DIR` holds the pulled images (`images/`) and the
 * unpacked base layer chains (`rootfs/`); the step cache is `--cache-dir`. "Base already pulled"
 * means, as for dockerd and buildah whose pull also unpacks the layers, that `images/` and the
 * base chains in `rootfs/` are filled before the first measured build and kept. Every cold build
 * gets a new, empty `--cache-dir`, and after every build the chains it added to `rootfs/` (those of
 * its own step layers) are removed, so no build starts with anything an earlier build made. The
 * warm workload reuses one `--cache-dir` across its builds. Each row has a cache of its own.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { repoRoot } from '../../../test/support/repo-root.js';
import type { IsolationRow } from '../options.js';
import type { Workload } from '../workloads.js';
import { imageName, type Builder, type BuildMeasure } from './builder.js';
import { runnerFor, type TsbuildRunner } from './tsbuild-runners.js';

interface OciIndex {
  manifests: Array<{ digest: string }>;
}
interface OciManifest {
  layers: Array<{ size: number }>;
}

/** What tsbuild says it isolates RUN steps with, and why: its `note: isolation: ...` line. */
function isolationNote(output: string): string | undefined {
  return /^note: isolation: (.*)$/m.exec(output)?.[1];
}

export class TsbuildBuilder implements Builder {
  readonly name: string;
  readonly layerKind = 'gzip';
  description: string;
  private readonly cacheDir: string;
  private readonly env: Readonly<Record<string, string>>;
  private readonly runner: TsbuildRunner;
  private readonly scratch: string;
  private seededChains = new Set<string>();
  private builds = 0;

  /** `layerCounts`: how many layers each base has. */
  constructor(readonly isolation: IsolationRow, private readonly work: string, private readonly layerCounts: ReadonlyMap<string, number>) {
    this.name = `tsbuild --isolation=${isolation}`;
    this.description = this.name;
    this.cacheDir = join(work, 'cache');
    this.env = { TSBUILD_CACHE_DIR: this.cacheDir };
    this.scratch = `${work}-scratch`;
    this.runner = runnerFor(isolation, this.scratch);
  }

  async prepare(bases: readonly string[]): Promise<void> {
    await this.runner.prepare(this.work);
    const timeFile = join(this.work, 'time-prepare');
    let isolation = 'isolation not reported';
    for (const base of bases) {
      await this.runner.run(['pull', base], this.env, [], timeFile);
      // A build with one RUN unpacks the base's layer chain, as `docker pull` and `buildah pull` do.
      const context = join(this.work, 'seed-context');
      await mkdir(context, { recursive: true });
      await writeFile(join(context, 'Dockerfile'), `FROM ${base}\nRUN true\n`);
      const seeded = await this.runner.run([
        'build', '--isolation', this.isolation, '--progress', 'plain', '-f', join(context, 'Dockerfile'),
        '--cache-dir', join(this.work, 'seed-cache'), '--output', `type=oci,dest=${join(this.work, 'seed-out')}`, context,
      ], this.env, [], timeFile);
      isolation = isolationNote(seeded.output) ?? isolation;
      for (const dir of ['seed-context', 'seed-cache', 'seed-out']) await rm(join(this.work, dir), { recursive: true, force: true });
    }
    await rm(timeFile, { force: true });
    this.description = `${this.name}: tsbuild ${await this.version()} ${this.runner.how}, gzip OCI layout output; isolation: ${isolation}`;
    this.seededChains = new Set(await this.chains());
  }

  async build(workload: Workload): Promise<BuildMeasure> {
    const run = this.builds++;
    const stepCache = workload.warm ? join(this.work, `warm-cache-${workload.id}`) : join(this.work, `build-cache-${run}`);
    const out = join(this.work, `out-${run}`);
    const timeFile = join(this.work, `time-${run}`);
    try {
      const args = ['build', '--isolation', this.isolation, '-f', workload.dockerfile, '-t', imageName(workload), '--cache-dir', stepCache, '--output', `type=oci,dest=${out}`, workload.context];
      const { seconds, peakRssBytes, output } = await this.runner.run(args, this.env, [workload.context, dirname(workload.dockerfile)], timeFile);
      const isolation = isolationNote(output);
      return { seconds, peakRssBytes, layerBytes: await this.addedLayerBytes(out, workload.base), ...(isolation !== undefined && { isolation }) };
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(timeFile, { force: true });
      if (!workload.warm) await rm(stepCache, { recursive: true, force: true });
      await this.removeUnseededChains();
    }
  }

  private async version(): Promise<string> {
    return (JSON.parse(await readFile(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  }

  async close(): Promise<void> {
    await rm(this.work, { recursive: true, force: true });
    await rm(this.scratch, { recursive: true, force: true });
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
