import os from 'node:os';
import path from 'node:path';
import type { ProgressListener } from '../builder/progress.js';
import { defaultStoreDir } from '../builder/store-location.js';
import type { Compression } from '../layers/compression.js';
import { TsbuildError } from '../layers/errors.js';
import { cacheSettings } from './cache-flags.js';
import type { CliIo } from './io.js';
import { LayerReport, type ReportMode } from './layer-report.js';
import { parsePairs } from './parse-pairs.js';
import { planRequest, type PlanFlags } from './plan-request.js';
import type { ProgressMode } from './progress-renderer.js';

/** The flags of `tsbuild build`, as the parser hands them over (and as `tsbuild executor` maps kaniko's onto). */
export interface BuildFlags extends PlanFlags {
  tag: string[];
  output: string[];
  label: string[];
  iidfile?: string | undefined;
  push: boolean;
  digestFile?: string | undefined;
  metadataFile?: string | undefined;
  progress: ProgressMode;
  report?: ReportMode | undefined;
  quiet: boolean;
  compression: Compression;
  compressionLevel?: number | undefined;
  isolation: 'auto' | 'oci' | 'chroot' | 'rootless' | 'none';
  runTimeout?: number | undefined;
  secret: string[];
  ssh: string[];
  noCache: boolean;
  noCacheFilter: string[];
  cacheDir?: string | undefined;
  cacheMaxSize?: string | undefined;
  cacheRepo?: string | undefined;
  cacheFrom: string[];
  cacheTo: string[];
  cacheTtl?: string | undefined;
  explainCache: boolean;
  forceInPlace: boolean;
  sourceDateEpoch?: string | undefined;
}

/** What a build printed besides progress: the digest it wrote on stdout. */
export interface BuildOutcome {
  readonly digest: string;
}

/**
 * Runs `tsbuild build`: in a re-executed tsbuild inside a user namespace for an unprivileged user
 * (returns that process's exit code), else here (returns undefined when it succeeded).
 */
export async function runBuild(args: BuildFlags, argv: readonly string[], io: CliIo, onBuilt?: (outcome: BuildOutcome) => Promise<void>): Promise<number | undefined> {
  const { build, defaultBuildCacheDir, enterUserNamespace, explainNoSpace, parseByteSize, parseCacheTtl, parseOutputSpec, progressRenderer } = await import('./library.js');
  // An unprivileged user builds as uid 0 of a user namespace: this same command, re-executed there.
  const delegated = await enterUserNamespace(argv, args.isolation, io);
  if (delegated !== undefined) return delegated;
  const cache = cacheSettings(args);
  const outputs = args.output.map(parseOutputSpec);
  const display = args.quiet ? undefined : progressRenderer(args.progress, io.stderr, io.stderrTerminal, args.explainCache);
  const reportMode: ReportMode = args.quiet ? 'none' : (args.report ?? (args.progress === 'json' ? 'json' : 'short'));
  const report = reportMode === 'none' ? undefined : new LayerReport();
  const listener = combine(display?.listener, report?.listener);
  const written = [
    ...outputs.flatMap((o) => (o.type === 'oci' ? [{ dir: o.dest, role: 'the output' }] : o.type === 'docker' ? [{ dir: path.dirname(o.dest), role: 'the output' }] : [])),
    { dir: os.tmpdir(), role: 'the temporary directory' },
    // The library's defaults, as build() applies them.
    { dir: cache.cacheDir ?? defaultBuildCacheDir(), role: 'the build cache' },
    { dir: defaultStoreDir(io.env), role: 'the local image store' },
  ];
  try {
    const result = await build({
      ...planRequest(args, io, listener),
      tags: args.tag,
      outputs: args.push && !outputs.some((o) => o.type === 'registry') ? [...outputs, { type: 'registry' as const }] : outputs,
      ...(args.digestFile !== undefined ? { digestFile: args.digestFile } : {}),
      ...(args.metadataFile !== undefined ? { metadataFile: args.metadataFile } : {}),
      labels: parsePairs('label', args.label),
      compression: args.compression,
      ...(args.compressionLevel !== undefined ? { compressionLevel: args.compressionLevel } : {}),
      ...sourceDateEpoch(args.sourceDateEpoch ?? io.env.SOURCE_DATE_EPOCH),
      ...(args.iidfile !== undefined ? { iidfile: args.iidfile } : {}),
      storeDir: defaultStoreDir(io.env),
      isolation: args.isolation,
      forceInPlace: args.forceInPlace,
      noCache: args.noCache,
      noCacheFilter: args.noCacheFilter,
      ...cache,
      ...(args.cacheMaxSize !== undefined ? { cacheMaxBytes: parseByteSize(args.cacheMaxSize) } : {}),
      ...(args.cacheTtl !== undefined ? { cacheTtlSeconds: await parseCacheTtl(args.cacheTtl) } : {}),
      ...(args.runTimeout !== undefined ? { runTimeoutSeconds: positiveSeconds(args.runTimeout) } : {}),
      secrets: args.secret,
      ssh: args.ssh.map((value) => (value.includes('=') ? value : `${value}=${io.env.SSH_AUTH_SOCK ?? ''}`)),
      ...(listener ? { progress: listener } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    }).catch(async (err: unknown) => {
      throw await explainNoSpace(err, written);
    });
    display?.close();
    for (const line of report?.lines(reportMode) ?? []) io.stderr(line);
    io.stdout(args.quiet ? result.imageId : `${result.descriptor.digest}`);
    await onBuilt?.({ digest: result.descriptor.digest });
    return undefined;
  } finally {
    display?.close();
  }
}

function combine(...listeners: (ProgressListener | undefined)[]): ProgressListener | undefined {
  const present = listeners.filter((l): l is ProgressListener => l !== undefined);
  if (present.length === 0) return undefined;
  return (event) => {
    for (const listener of present) listener(event);
  };
}

function positiveSeconds(value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new TsbuildError('BAD_FLAG', `invalid --run-timeout ${value}: expected a positive number of seconds`);
  return value;
}

function sourceDateEpoch(value: string | undefined): { sourceDateEpoch?: number } {
  if (value === undefined || value === '') return {};
  if (!/^\d+$/.test(value)) throw new TsbuildError('BAD_FLAG', `invalid SOURCE_DATE_EPOCH "${value}": expected whole seconds since 1970`);
  return { sourceDateEpoch: Number(value) };
}
