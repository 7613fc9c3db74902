import os from 'node:os';
import path from 'node:path';
import type { Compression, ProgressListener, ReexecCommand } from '../builder/index.js';
import type { CommonArgs } from './build-request.js';
import { cacheSettings } from './cache-flags.js';
import type { CliIo } from './io.js';
import { LayerReport, type ReportMode } from './layer-report.js';
import type { ProgressMode } from './progress-renderer.js';

/** The flags of `tsbuild build`, as the parser hands them over (and as `tsbuild executor` maps kaniko's onto). */
export interface BuildFlags extends CommonArgs {
  tag: string[];
  output: string[];
  annotation: string[];
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
  provenance?: string | undefined;
  sbom?: string | undefined;
}

/** What a build printed besides progress: the digest it wrote on stdout. */
export interface BuildOutcome {
  readonly digest: string;
}

/**
 * Runs `tsbuild build`: in a re-executed tsbuild inside a user namespace for an unprivileged user
 * (returns that process's exit code), else here (returns undefined when it succeeded).
 */
export async function runBuild(args: BuildFlags, command: Omit<ReexecCommand, keyof CliIo>, io: CliIo, onBuilt?: (outcome: BuildOutcome) => Promise<void>): Promise<number | undefined> {
  const lib = await import('./library.js');
  const outputs = args.output.map(lib.parseOutputSpec);
  const attest = lib.attestOptions(args.provenance, args.sbom);
  const toStdout = outputs.some((o) => o.type !== 'registry' && o.dest === '-');
  const stdoutBytes = io.stdoutStream ?? process.stdout;
  // An unprivileged user builds as uid 0 of a user namespace: this same command, re-executed there.
  const delegated = await lib.enterUserNamespace({ ...io, ...command, ...(toStdout ? { stdoutBytes } : {}) }, args.isolation);
  if (delegated !== undefined) return delegated;
  const cache = cacheSettings(args);
  const display = args.quiet ? undefined : lib.progressRenderer(args.progress, io.stderr, io.stderrTerminal, args.explainCache);
  const reportMode: ReportMode = args.quiet ? 'none' : (args.report ?? (args.progress === 'json' ? 'json' : 'short'));
  const report = reportMode === 'none' ? undefined : new LayerReport();
  const listener = combine(display?.listener, report?.listener);
  const written = [
    ...outputs.flatMap((o) => (o.type === 'registry' || o.dest === '-' ? [] : [{ dir: o.type === 'local' || (o.type === 'oci' && !o.tar) ? o.dest : path.dirname(o.dest), role: 'the output' }])),
    { dir: os.tmpdir(), role: 'the temporary directory' },
    // The library's defaults, as build() applies them.
    { dir: cache.dir ?? lib.defaultBuildCacheDir(io.env), role: 'the build cache' },
    { dir: lib.defaultStoreDir(io.env), role: 'the local image store' },
  ];
  try {
    const result = await lib
      .build({
        ...lib.commonRequest(args, io, listener),
        outputs: {
          targets: args.push && !outputs.some((o) => o.type === 'registry') ? [...outputs, { type: 'registry' as const }] : outputs,
          tags: args.tag,
          annotations: args.annotation,
          ...(toStdout ? { stream: stdoutBytes } : {}),
          storeDir: lib.defaultStoreDir(io.env),
          ...(args.iidfile !== undefined ? { iidfile: args.iidfile } : {}),
          ...(args.digestFile !== undefined ? { digestFile: args.digestFile } : {}),
          ...(args.metadataFile !== undefined ? { metadataFile: args.metadataFile } : {}),
        },
        image: {
          labels: lib.parsePairs('label', args.label),
          compression: args.compression,
          ...(args.compressionLevel !== undefined ? { compressionLevel: args.compressionLevel } : {}),
          ...lib.sourceDateEpoch(args.sourceDateEpoch ?? io.env.SOURCE_DATE_EPOCH),
          ...(attest ? { attest } : {}),
        },
        cache: {
          disabled: args.noCache,
          disabledStages: args.noCacheFilter,
          ...cache,
          ...(args.cacheMaxSize !== undefined ? { maxBytes: lib.parseByteSize(args.cacheMaxSize) } : {}),
          ...(args.cacheTtl !== undefined ? { ttlSeconds: lib.parseCacheTtl(args.cacheTtl) } : {}),
        },
        run: {
          isolation: args.isolation,
          forceInPlace: args.forceInPlace,
          ...(args.runTimeout !== undefined ? { timeoutSeconds: lib.positiveSeconds(args.runTimeout) } : {}),
          secrets: args.secret,
          ssh: args.ssh,
        },
        ...(listener ? { progress: listener } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
      })
      .catch(async (err: unknown) => {
        throw await lib.explainNoSpace(err, written);
      });
    display?.close();
    for (const line of report?.lines(reportMode) ?? []) io.stderr(line);
    // stdout carries the archive when an output writes there: nothing else may go to it.
    if (!toStdout) io.stdout(args.quiet ? result.imageId : `${result.descriptor.digest}`);
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
