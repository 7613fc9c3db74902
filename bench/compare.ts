/**
 * tsbuild side by side with BuildKit (in docker.io's dockerd) and Buildah (vfs storage) on four
 * workloads. Runs as root on Debian 12 and installs what it compares against. Every builder pulls
 * its base from Debian's docker-registry on 127.0.0.1 before the first measured build (the test
 * suite's Debian bookworm minbase and busybox fixtures, pushed there with skopeo).
 *
 *   w1  10 × `RUN echo stepN > /stepN.txt` on Debian minbase (6.8k files)
 *   w2  COPY 20,000 files / 160 MiB (a generated node_modules-like tree) onto busybox, then one RUN
 *   w3  one RUN writing 1.4 GB of text and 64 MiB of random bytes, on Debian
 *   w4  w2 again after one source file was edited, with the builder's step cache warm
 *
 * tsbuild gets one row per `--isolation` mode (see compare/builders/tsbuild-runners.ts): `oci`
 * (runc) and `chroot` as root on the host; `rootless` as an unprivileged user with subordinate ids,
 * so that tsbuild runs as uid 0 of a user namespace of its own, as in a pod with `hostUsers: false`
 * (the bench creates the system user `tsbuild-bench` for it, as the tests create theirs); `none`, in
 * place, as root of a disposable container made like an unprivileged pod, one per build.
 *
 * w1–w3 are cold: no step cache (see each builder's module for how). Each run builds with every
 * builder and row in turn, starting with a different one each run, so that drift of a shared
 * machine falls on all of them alike. Per workload it prints for each row the median wall time of
 * the runs, for each tsbuild row its ratios to BuildKit and Buildah, its peak RSS
 * (`/usr/bin/time -f %M`) and the isolation tsbuild reports with its reason, and the size of the
 * layers each build added: gzip-compressed for tsbuild, whose output is a gzip OCI layout (the
 * default); for BuildKit the unpacked bytes dockerd reports, and for Buildah the uncompressed layer
 * tars, as both build into their local stores. It also prints the median time of
 * `tsbuild --version`. A builder or row that cannot run is reported with its one-line reason and
 * the others still run.
 *
 *     npm run bench -- [--only w2[,w4]] [--isolation oci[,chroot,rootless,none]] [--runs N] [--json FILE]
 *
 * `--only` and `--isolation` choose workloads and tsbuild rows (default: all of each), `--runs` the
 * runs per workload (default 3), `--json` a file for everything measured, summaries included. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { mountsUnder } from '../builder/host/mountinfo.js';
import { BuildahBuilder } from './compare/builders/buildah.js';
import { BuildKitBuilder } from './compare/builders/buildkit.js';
import type { Builder } from './compare/builders/builder.js';
import { TsbuildBuilder } from './compare/builders/tsbuild.js';
import { tsbuildCommand, withNodeFirst } from './compare/builders/tsbuild-runners.js';
import { runCommand } from './compare/command.js';
import { serveBaseImages } from './compare/fixtures.js';
import { ensureTools } from './compare/install.js';
import { parseOptions, type BenchOptions } from './compare/options.js';
import { formatVersion, formatWorkload, jsonReport, type BuilderResult, type VersionResult, type WorkloadResult } from './compare/report.js';
import { prepareWorkloads, type Workload } from './compare/workloads.js';
import { median } from './median.js';

const VERSION_RUNS = 5;

function oneLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' | ');
}

function note(text: string): void {
  process.stderr.write(`${text}\n`);
}

async function versionTime(): Promise<VersionResult> {
  const times: number[] = [];
  try {
    for (let i = 0; i < VERSION_RUNS; i++) times.push((await runCommand(tsbuildCommand(), ['--version'], { env: { ...process.env, PATH: withNodeFirst(process.env.PATH) } })).seconds);
    return { seconds: median(times) };
  } catch (error) {
    return { failed: oneLine(error) };
  }
}

/** Runs one workload on every builder that is still usable; a builder that fails is marked failed for this workload. */
async function measure(workload: Workload, builders: readonly Builder[], unusable: ReadonlyMap<Builder, string>, runs: number): Promise<WorkloadResult> {
  const results = new Map(builders.map((b): [Builder, BuilderResult] => [b, {
    builder: b.name,
    layerKind: b.layerKind,
    ...(b.isolation !== undefined && { isolation: b.isolation }),
    runs: [],
    ...(unusable.has(b) && { failed: unusable.get(b)! }),
  }]));
  const attempt = async (builder: Builder, label: string, record: boolean): Promise<void> => {
    const result = results.get(builder)!;
    if (result.failed !== undefined) return;
    try {
      const measured = await builder.build(workload);
      if (record) result.runs.push(measured);
      note(`${workload.id} ${label}: ${builder.name} ${measured.seconds.toFixed(2)} s`);
    } catch (error) {
      result.failed = oneLine(error);
      note(`${workload.id} ${label}: ${builder.name} failed: ${result.failed}`);
    }
  };
  if (workload.warm) {
    for (const builder of builders) await attempt(builder, 'cache warm-up', false);
  }
  for (let run = 0; run < runs; run++) {
    await workload.beforeRun?.(run);
    for (let i = 0; i < builders.length; i++) await attempt(builders[(run + i) % builders.length]!, `run ${run + 1}/${runs}`, true);
  }
  return { id: workload.id, title: workload.title, builders: [...results.values()] };
}

async function bench(options: BenchOptions, work: string, cleanups: Array<() => Promise<void>>): Promise<void> {
  note(`machine: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const served = await serveBaseImages(work);
  cleanups.push(() => served.registry.stop());
  const workloads = await prepareWorkloads(work, served.refs, options.only);
  const bases = [...new Set(workloads.map((w) => w.base))];
  const builders: Builder[] = [
    ...options.isolation.map((isolation) => new TsbuildBuilder(isolation, join(work, `tsbuild-${isolation}`), served.layerCounts)),
    new BuildKitBuilder(join(work, 'buildkit'), served.registry.host),
    new BuildahBuilder(join(work, 'buildah'), served.layerCounts),
  ];
  const unusable = new Map<Builder, string>();
  for (const builder of builders) {
    cleanups.push(() => builder.close());
    try {
      await builder.prepare(bases);
    } catch (error) {
      unusable.set(builder, `could not be set up: ${oneLine(error)}`);
      note(`${builder.name} ${unusable.get(builder)}`);
    }
  }
  const version = await versionTime();
  process.stdout.write(`${options.runs} run(s) per builder and workload on ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)} at start, ${new Date().toISOString()}\n`);
  for (const builder of builders) process.stdout.write(`  ${unusable.has(builder) ? `${builder.name}: ${unusable.get(builder)}` : builder.description}\n`);
  const results: WorkloadResult[] = [];
  for (const workload of workloads) {
    const result = await measure(workload, builders, unusable, options.runs);
    results.push(result);
    process.stdout.write(`\n${formatWorkload(result, options.runs)}`);
  }
  process.stdout.write(`\n${formatVersion(version, VERSION_RUNS)}`);
  if (options.json !== undefined) {
    const machine = { cores: os.cpus().length, memoryBytes: os.totalmem(), loadAverage: os.loadavg(), date: new Date().toISOString() };
    await writeFile(options.json, jsonReport(results, version, options.runs, machine));
  }
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
    await ensureTools();
  } catch (error) {
    note(`bench: ${oneLine(error)}`);
    return 2;
  }
  const work = await mkdtemp(join(os.tmpdir(), 'tsbuild-bench-compare-'));
  const cleanups: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | undefined;
  // Daemons and registries this process started must stop even when the bench is interrupted.
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => note(`cleanup: ${oneLine(error)}`));
      const mounts = await mountsUnder(work);
      if (mounts.length > 0) note(`cleanup: ${work} still has mounts (${mounts.join(', ')}); left in place`);
      else await rm(work, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
  }
  // A reader that goes away (`| head`) must not leave them running either.
  process.stdout.once('error', (error: Error) => {
    note(`bench: stdout: ${error.message}`);
    void cleanUp().finally(() => process.exit(1));
  });
  try {
    await bench(options, work, cleanups);
    return 0;
  } catch (error) {
    note(`bench: ${oneLine(error)}`);
    return 1;
  } finally {
    await cleanUp();
  }
}

process.exitCode = await main();
