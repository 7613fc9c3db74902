import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../builder/index.js';
import type { BuildFlags } from './build-command.js';
import { kanikoRefused } from './kaniko-flags.js';

/** kaniko's flags as the parser hands them over (camelCase keys). */
export interface KanikoArgs {
  context: string;
  contextSubPath?: string | undefined;
  dockerfile: string;
  destination: string[];
  noPush: boolean;
  tarPath?: string | undefined;
  ociLayoutPath?: string | undefined;
  cache: boolean;
  cacheRepo?: string | undefined;
  cacheTtl?: string | undefined;
  noPushCache: boolean;
  cacheRunLayers?: boolean | undefined;
  cacheCopyLayers?: boolean | undefined;
  buildArg: string[];
  target?: string | undefined;
  label: string[];
  customPlatform?: string | undefined;
  insecure: boolean;
  insecureRegistry: string[];
  skipTlsVerify: boolean;
  skipTlsVerifyRegistry: string[];
  registryCertificate: string[];
  digestFile?: string | undefined;
  imageNameWithDigestFile?: string | undefined;
  reproducible: boolean;
  force: boolean;
  verbosity: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'panic';
  logFormat: 'text' | 'color' | 'json';
  logTimestamp: boolean;
  compression?: 'gzip' | 'zstd' | undefined;
  compressionLevel?: number | undefined;
  snapshotMode?: string | undefined;
  ignoreVarRun?: boolean | undefined;
  [flag: string]: unknown;
}

/** A kaniko invocation as a tsbuild build, plus what runs after it. */
export interface ExecutorPlan {
  readonly flags: BuildFlags;
  /** Writes kaniko's `--image-name-with-digest-file` once the digest is known. */
  readonly afterBuild: (digest: string) => Promise<void>;
}

const fail = (message: string): never => {
  throw new TsbuildError('BAD_FLAG', message);
};

/** Fails on the first kaniko flag that has no tsbuild equivalent, and on kaniko's own usage errors. */
export function refuseKanikoFlags(k: KanikoArgs): void {
  for (const [flag, instead] of Object.entries(kanikoRefused)) {
    const value = k[camel(flag)];
    if (value !== undefined && value !== 'false') fail(`kaniko flag --${flag} has no tsbuild equivalent: ${instead}`);
  }
  if (k.cacheRunLayers === false) fail('kaniko flag --cache-run-layers=false has no tsbuild equivalent: tsbuild caches every step; use --cache=false to run every step');
  if (k.ignoreVarRun === false) fail('kaniko flag --ignore-var-run=false has no tsbuild equivalent: tsbuild never snapshots the mounts of a step');
  if (k.logTimestamp) fail('kaniko flag --log-timestamp has no tsbuild equivalent: progress lines carry no timestamps');
  if (!k.noPush && k.destination.length === 0) fail('you must provide --destination, or use --no-push');
}

/** Maps kaniko's executor flags onto a tsbuild build, refusing with the way out any flag that has no equivalent. */
export function kanikoBuild(k: KanikoArgs, cwd: string): ExecutorPlan {
  refuseKanikoFlags(k);
  const context = contextDir(k, cwd);
  const cacheRepo = k.cache ? (k.cacheRepo ?? inferredCacheRepo(k)) : undefined;
  const plainHttp = [...k.insecureRegistry, ...(k.insecure ? [...k.destination, ...(cacheRepo ? [cacheRepo] : [])].map(registryOf) : [])];
  checkTlsFlags(k, plainHttp);
  const flags: BuildFlags = {
    context,
    file: dockerfilePath(k.dockerfile, context, cwd),
    buildArg: k.buildArg,
    ...(k.target !== undefined ? { target: k.target } : {}),
    platform: k.customPlatform !== undefined ? [k.customPlatform] : [],
    buildContext: [],
    addHost: [],
    pull: false,
    insecureRegistry: [...new Set(plainHttp)],
    ...registryCa(k.registryCertificate),
    tag: k.destination,
    output: [...(k.tarPath !== undefined ? [`type=docker,dest=${k.tarPath}`] : []), ...(k.ociLayoutPath !== undefined ? [`type=oci,dest=${k.ociLayoutPath}`] : [])],
    annotation: [],
    label: k.label,
    push: !k.noPush,
    ...(k.digestFile !== undefined ? { digestFile: k.digestFile } : {}),
    progress: k.logFormat === 'json' ? 'json' : k.logFormat === 'text' ? 'plain' : 'auto',
    quiet: ['warn', 'error', 'fatal', 'panic'].includes(k.verbosity),
    explainCache: k.verbosity === 'debug' || k.verbosity === 'trace',
    compression: k.compression ?? 'gzip',
    ...(k.compressionLevel !== undefined ? { compressionLevel: k.compressionLevel } : {}),
    isolation: 'auto',
    secret: [],
    ssh: [],
    // Without --cache kaniko runs every step.
    noCache: !k.cache,
    noCacheFilter: [],
    ...(cacheRepo !== undefined && !k.noPushCache ? { cacheRepo } : {}),
    cacheFrom: cacheRepo !== undefined && k.noPushCache ? [`type=registry,ref=${cacheRepo}`] : [],
    cacheTo: [],
    ...(k.cacheTtl !== undefined ? { cacheTtl: `${goDurationSeconds(k.cacheTtl)}` } : {}),
    forceInPlace: k.force,
    ...(k.reproducible ? { sourceDateEpoch: '0' } : {}),
  };
  const nameFile = k.imageNameWithDigestFile;
  return {
    flags,
    afterBuild: async (digest) => {
      if (nameFile !== undefined) await writeFile(nameFile, k.destination.map((name) => `${name.replace(/[:@][^/]*$/, '')}@${digest}\n`).join(''));
    },
  };
}

/** Notes for kaniko flags that are accepted but change nothing in tsbuild, so that none goes by unsaid. */
export function kanikoNotes(k: KanikoArgs): string[] {
  return [
    ...(k.cacheRepo !== undefined && !k.cache ? ['--cache-repo is not used without --cache=true (as in kaniko)'] : []),
    ...(k.snapshotMode !== undefined && k.snapshotMode !== 'full' ? [`--snapshot-mode=${k.snapshotMode}: tsbuild always compares file contents, as full does`] : []),
    ...(k.cacheCopyLayers === false ? ['--cache-copy-layers=false: tsbuild caches COPY steps too'] : []),
    ...(k.skipUnusedStages === false ? ['--skip-unused-stages=false: tsbuild builds only the stages the target needs'] : []),
    ...(k.pushRetry !== undefined ? ['--push-retry: tsbuild retries transient registry failures on its own'] : []),
    ...(k.useNewRun !== undefined || k.compressedCaching !== undefined ? ['--use-new-run and --compressed-caching have no effect in tsbuild'] : []),
  ];
}

/** `--context`: a directory, optionally as `dir://DIR`; kaniko's remote contexts are refused. */
function contextDir(k: KanikoArgs, cwd: string): string {
  const scheme = /^([a-z0-9]+):\/\//.exec(k.context);
  if (scheme && scheme[1] !== 'dir') {
    fail(`kaniko context ${scheme[1]}:// is not supported: fetch it and pass --context dir://DIR, or tar://FILE.tar.gz`);
  }
  const dir = path.resolve(cwd, scheme ? k.context.slice('dir://'.length) : k.context);
  return k.contextSubPath !== undefined ? path.join(dir, k.contextSubPath) : dir;
}

/** As kaniko resolves `--dockerfile`: the path as given when it exists, else relative to the context. */
function dockerfilePath(dockerfile: string, context: string, cwd: string): string {
  if (/^https?:\/\//.test(dockerfile)) fail('a Dockerfile URL is not supported: download it and pass --dockerfile PATH');
  const given = path.resolve(cwd, dockerfile);
  return existsSync(given) ? given : path.resolve(context, dockerfile);
}

/** kaniko's default cache repository: the first destination's repository plus `/cache`. */
function inferredCacheRepo(k: KanikoArgs): string {
  const destination = k.destination[0];
  if (destination === undefined || k.noPush) return fail('if using cache with --no-push, specify cache repo with --cache-repo');
  return `${destination.replace(/[:@][^/]*$/, '')}/cache`;
}

/** TLS checks can be skipped only where tsbuild speaks plain HTTP: loopback registries and --insecure ones. */
function checkTlsFlags(k: KanikoArgs, plainHttp: readonly string[]): void {
  const isPlain = (registry: string): boolean => plainHttp.includes(registry) || /^(localhost|127\.[0-9.]+|\[::1\])(:\d+)?$/.test(registry);
  const verified = [...(k.skipTlsVerify ? k.destination.map(registryOf) : []), ...k.skipTlsVerifyRegistry].filter((r) => !isPlain(r));
  if (verified.length > 0) {
    fail(`tsbuild always verifies TLS, so it cannot skip that for ${[...new Set(verified)].join(', ')}: trust its CA with --registry-certificate REGISTRY=FILE, or add --insecure for plain HTTP`);
  }
}

function registryCa(values: readonly string[]): { registryCa?: string } {
  const files = [...new Set(values.map((v) => v.slice(v.indexOf('=') + 1)))];
  if (values.some((v) => !v.includes('='))) fail('--registry-certificate expects REGISTRY=FILE');
  if (files.length > 1) fail(`tsbuild trusts one extra CA file for every registry, but --registry-certificate names ${files.join(' and ')}: concatenate them into one PEM file`);
  return files[0] !== undefined ? { registryCa: files[0] } : {};
}

function registryOf(name: string): string {
  const first = name.split('/')[0]!;
  return name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

/** A Go duration (`336h0m0s`, `90m`, `1.5h`) in whole seconds. */
export function goDurationSeconds(text: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) fail(`invalid --cache-ttl "${text}": expected a duration such as 336h or 1h30m`);
  const seconds = Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0));
  if (seconds <= 0) fail(`invalid --cache-ttl "${text}": it must be longer than a second`);
  return seconds;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
