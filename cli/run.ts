import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import type { Compression } from '../builder/index.js';
import { processIo, type CliIo } from './io.js';
import { printable } from './printable.js';
import type { ProgressMode } from './progress-renderer.js';

/** The command-line entry point, which a build re-executes inside a user namespace. */
const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));

/** What the commands run, loaded when one runs: `--help` and usage errors load only the parser. */
function library(): Promise<typeof import('./library.js')> {
  return import('./library.js');
}

/** Runs the tsbuild command line; returns the exit code. Only this layer maps errors to codes. */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  try {
    const outcome: Outcome = {};
    await parser(argv, io, outcome).parseAsync();
    return outcome.exitCode ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`error: ${printable(err.message)}`);
      return 2;
    }
    const { errorLine, exitCodeOf } = await library();
    io.stderr(`error: ${errorLine(err)}`);
    if (io.env.TSBUILD_DEBUG && err instanceof Error && err.stack) io.stderr(err.stack);
    return exitCodeOf(err);
  }
}

class UsageError extends Error {}

/** Set by a command that ran the build in a re-executed tsbuild: that process's exit code. */
interface Outcome {
  exitCode?: number;
}

function planOptions(y: Argv) {
  return y
    .positional('context', { type: 'string', default: '.', describe: 'build context directory' })
    .option('file', { alias: 'f', type: 'string', describe: 'Dockerfile (default: CONTEXT/Dockerfile)' })
    .option('build-arg', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'build-time variable KEY=VALUE' })
    .option('target', { type: 'string', describe: 'stage to build' })
    .option('platform', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'target platform(s), os/arch[/variant], comma-separated' })
    .option('build-context', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'named context NAME=oci-layout://DIR[:TAG] or NAME=DIR' })
    .option('insecure-registry', registryOptions.insecure)
    .option('registry-ca', registryOptions.ca);
}

const registryOptions = {
  insecure: { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'registry host[:port] reached over plain HTTP (loopback always is)' },
  ca: { type: 'string', describe: 'PEM file of extra CA certificates to trust for registries' },
} as const;

function parser(argv: readonly string[], io: CliIo, outcome: Outcome) {
  return yargs([...argv])
    .scriptName('tsbuild')
    .parserConfiguration({ 'camel-case-expansion': true, 'boolean-negation': false })
    .command(
      ['build [context]', '$0 [context]'],
      'build an image from a Dockerfile',
      (y) =>
        planOptions(y)
          .option('tag', { alias: 't', type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'name:tag for the image' })
          .option('output', { alias: 'o', type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'type=oci,dest=DIR[,tar=true] or type=docker,dest=FILE' })
          .option('label', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'image label KEY=VALUE' })
          .option('iidfile', { type: 'string', describe: 'write the image ID to this file' })
          .option('push', { type: 'boolean', default: false, describe: 'push every -t name (same as --output type=registry)' })
          .option('digest-file', { type: 'string', describe: 'write the pushed or exported manifest (or index) digest to this file' })
          .option('metadata-file', { type: 'string', describe: 'write the digest, names and descriptor as JSON to this file' })
          .option('progress', { choices: ['auto', 'plain', 'json'] as const, default: 'auto' as const })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print only the image ID' })
          .option('compression', { choices: ['gzip', 'zstd', 'uncompressed'] as const, default: 'gzip' as const })
          .option('compression-level', { type: 'number' })
          .option('isolation', { choices: ['auto', 'oci', 'chroot', 'rootless', 'none'] as const, default: 'auto' as const, describe: 'how RUN steps are isolated' })
          .option('run-timeout', { type: 'number', describe: 'kill a RUN step after this many seconds and fail the build' })
          .option('secret', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR' })
          .option('ssh', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'SSH agent for RUN --mount=type=ssh: ID (the agent at $SSH_AUTH_SOCK) or ID=SOCKET' })
          .option('no-cache', { type: 'boolean', default: false, describe: 'run every step instead of reusing cached results' })
          .option('no-cache-filter', { type: 'string', array: true, nargs: 1, default: [] as string[], describe: 'stage whose steps always run' })
          .option('cache-dir', { type: 'string', describe: 'build cache directory (default: <cache dir>/build-cache)' })
          .option('cache-max-size', { type: 'string', describe: 'evict least recently used cache entries beyond this size, e.g. 10GiB' })
          .option('cache-repo', { type: 'string', describe: 'registry repository REGISTRY/REPO that shares the build cache between machines' })
          .option('cache-ttl', { type: 'string', describe: 'ignore cache repository entries older than this, e.g. 168h, 30m, 7d or 3600 (seconds)' })
          .option('explain-cache', { type: 'boolean', default: false, describe: 'print every input that made a step miss the cache' })
          .option('force-in-place', { type: 'boolean', default: false, describe: 'allow --isolation=none outside a detected container' })
          .option('source-date-epoch', { type: 'string', describe: 'clamp timestamps to this time (default: $SOURCE_DATE_EPOCH)' }),
      async (args) => {
        const { build, commonRequest, defaultBuildCacheDir, defaultStoreDir, enterUserNamespace, explainNoSpace, parseByteSize, parseCacheTtl, parseOutputSpec, parsePairs, positiveSeconds, progressRenderer, sourceDateEpoch } =
          await library();
        // An unprivileged user builds as uid 0 of a user namespace: this same command, re-executed there.
        const delegated = await enterUserNamespace({ ...io, script: mainScript, argv }, args.isolation);
        if (delegated !== undefined) {
          outcome.exitCode = delegated;
          return;
        }
        const progress: ProgressMode = args.progress;
        const listener = args.quiet ? undefined : progressRenderer(progress, io.stderr, io.stderrTerminal, args.explainCache);
        const outputs = args.output.map(parseOutputSpec);
        const written = [
          ...outputs.flatMap((o) => (o.type === 'oci' ? [{ dir: o.dest, role: 'the output' }] : o.type === 'docker' ? [{ dir: path.dirname(o.dest), role: 'the output' }] : [])),
          { dir: os.tmpdir(), role: 'the temporary directory' },
          // The library's defaults, as build() applies them.
          { dir: args.cacheDir ?? defaultBuildCacheDir(io.env), role: 'the build cache' },
          { dir: defaultStoreDir(io.env), role: 'the local image store' },
        ];
        const result = await build({
          ...commonRequest(args, io, listener),
          outputs: {
            targets: args.push && !outputs.some((o) => o.type === 'registry') ? [...outputs, { type: 'registry' as const }] : outputs,
            tags: args.tag,
            storeDir: defaultStoreDir(io.env),
            ...(args.iidfile !== undefined ? { iidfile: args.iidfile } : {}),
            ...(args.digestFile !== undefined ? { digestFile: args.digestFile } : {}),
            ...(args.metadataFile !== undefined ? { metadataFile: args.metadataFile } : {}),
          },
          image: {
            labels: parsePairs('label', args.label),
            compression: args.compression as Compression,
            ...(args.compressionLevel !== undefined ? { compressionLevel: args.compressionLevel } : {}),
            ...sourceDateEpoch(args.sourceDateEpoch ?? io.env.SOURCE_DATE_EPOCH),
          },
          cache: {
            disabled: args.noCache,
            disabledStages: args.noCacheFilter,
            ...(args.cacheDir !== undefined ? { dir: args.cacheDir } : {}),
            ...(args.cacheMaxSize !== undefined ? { maxBytes: parseByteSize(args.cacheMaxSize) } : {}),
            ...(args.cacheRepo !== undefined ? { repository: args.cacheRepo } : {}),
            ...(args.cacheTtl !== undefined ? { ttlSeconds: parseCacheTtl(args.cacheTtl) } : {}),
          },
          run: {
            isolation: args.isolation,
            forceInPlace: args.forceInPlace,
            ...(args.runTimeout !== undefined ? { timeoutSeconds: positiveSeconds(args.runTimeout) } : {}),
            secrets: args.secret,
            ssh: args.ssh,
          },
          ...(listener ? { progress: listener } : {}),
          ...(io.signal ? { signal: io.signal } : {}),
        }).catch(async (err: unknown) => {
          throw await explainNoSpace(err, written);
        });
        io.stdout(args.quiet ? result.imageId : `${result.descriptor.digest}`);
      },
    )
    .command(
      'plan [context]',
      'print the build plan as JSON without building',
      (y) => planOptions(y),
      async (args) => {
        const { commonRequest, planBuild } = await library();
        io.stdout(JSON.stringify(await planBuild(commonRequest(args, io)), null, 2));
      },
    )
    .command(
      'pull <reference>',
      'pull an image into the local image cache ahead of a build',
      (y) =>
        y
          .positional('reference', { type: 'string', demandOption: true })
          .option('platform', { type: 'string', describe: 'os/arch[/variant] (default: this machine)' })
          .option('insecure-registry', registryOptions.insecure)
          .option('registry-ca', registryOptions.ca)
          .option('progress', { choices: ['auto', 'plain', 'json'] as const, default: 'auto' as const }),
      async (args) => {
        const { hostPlatform, parsePlatform, progressRenderer, pullBaseImage, registrySettings } = await library();
        const listener = progressRenderer(args.progress, io.stderr, io.stderrTerminal);
        const platform = args.platform !== undefined ? parsePlatform(args.platform) : hostPlatform();
        const image = await pullBaseImage(args.reference, platform, registrySettings(args, io.env, listener));
        io.stdout(`${image.reference}\t${image.manifestDigest}`);
      },
    )
    .command(
      'prune',
      'empty the build cache and the RUN cache mounts no build is using',
      (y) => y.option('cache-dir', { type: 'string', describe: 'build cache directory (default: <cache dir>/build-cache)' }),
      async (args) => {
        const { defaultBuildCacheDir, defaultRunCacheDir, LocalCacheStore, pruneCacheMounts } = await library();
        const store = await LocalCacheStore.open(args.cacheDir ?? defaultBuildCacheDir(io.env));
        try {
          const freed = await store.prune();
          const mounts = await pruneCacheMounts(defaultRunCacheDir(io.env));
          io.stdout(`removed ${freed.records} cache entries, ${freed.bytes} bytes, and ${mounts} RUN cache mounts`);
        } finally {
          await store.release();
        }
      },
    )
    .command('images', 'list the images in the local store ($TSBUILD_STORE, by default $XDG_DATA_HOME/tsbuild/store)', {}, async () => {
      const { defaultStoreDir, listImages } = await library();
      for (const image of await listImages(defaultStoreDir(io.env))) io.stdout(`${image.name}\t${image.descriptor.digest}`);
    })
    .command(
      'inspect <name>',
      'print the manifest and config of an image in the local store',
      (y) => y.positional('name', { type: 'string', demandOption: true }),
      async (args) => {
        const { defaultStoreDir, inspectImage } = await library();
        io.stdout(JSON.stringify(await inspectImage(defaultStoreDir(io.env), args.name), null, 2));
      },
    )
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((message, err) => {
      throw err ?? new UsageError(message);
    });
}
