import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { processIo, type CliIo } from './io.js';
import { kanikoOptions, kanikoRefused } from './kaniko-flags.js';
import { loadYargs } from './load-yargs.js';
import { buildOptions, planOptions, pruneOptions, pullOptions } from './options.js';
import { printable } from './printable.js';

/** The command-line entry point, which a build re-executes inside a user namespace unless `io.entryScript` names another. */
const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));

/** What the commands run, loaded when one runs: `--help` and usage errors load only the parser. */
function library(): Promise<typeof import('./library.js')> {
  return import('./library.js');
}

/** Runs the tsbuild command line; returns the exit code. Only this layer maps errors to codes. */
export async function run(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  try {
    const outcome: Outcome = {};
    await withoutHelpLayoutOnRun(parser(await loadYargs(), argv, io, outcome)).parseAsync();
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

function parser(yargs: Awaited<ReturnType<typeof loadYargs>>, argv: readonly string[], io: CliIo, outcome: Outcome) {
  return yargs([...argv])
    .scriptName('tsbuild')
    .parserConfiguration({ 'camel-case-expansion': true, 'boolean-negation': false })
    .command(
      ['build [context]', '$0 [context]'],
      'build an image from a Dockerfile',
      (y) => lastValueWins(y.positional('context', contextPositional).options(buildOptions), buildOptions),
      async (args) => {
        const { runBuild } = await import('./build-command.js');
        outcome.exitCode = await runBuild(args, { script: io.entryScript ?? mainScript, argv }, io);
      },
    )
    .command(
      'executor',
      'build as kaniko\'s executor does, from its flags (see the migration table in the README)',
      (y) => lastValueWins(withRefusedKanikoFlags(y.options(kanikoOptions)), kanikoOptions),
      async (args) => {
        const { kanikoBuild, kanikoNotes, refuseKanikoFlags } = await import('./executor.js');
        const { unpackKanikoContext } = await import('./kaniko-context.js');
        const { runBuild } = await import('./build-command.js');
        refuseKanikoFlags(args);
        const context = await unpackKanikoContext(args.context, process.cwd());
        try {
          const plan = kanikoBuild({ ...args, context: context.context }, process.cwd());
          for (const note of kanikoNotes(args)) io.stderr(`note: ${note}`);
          outcome.exitCode = await runBuild(plan.flags, { script: io.entryScript ?? mainScript, argv }, io, (built) => plan.afterBuild(built.digest));
        } finally {
          await context.cleanup();
        }
      },
    )
    .command(
      'plan [context]',
      'print the build plan as JSON without building',
      (y) => lastValueWins(y.positional('context', contextPositional).options(planOptions), planOptions),
      async (args) => {
        const { commonRequest, planBuild } = await library();
        io.stdout(JSON.stringify(await planBuild(commonRequest(args, io)), null, 2));
      },
    )
    .command(
      'pull <reference>',
      'pull an image into the local image cache ahead of a build',
      (y) => lastValueWins(y.positional('reference', { type: 'string', demandOption: true }).options(pullOptions), pullOptions),
      async (args) => {
        const { hostPlatform, parsePlatform, progressRenderer, pullBaseImage, registrySettings } = await library();
        const display = progressRenderer(args.progress, io.stderr, io.stderrTerminal);
        const platform = args.platform !== undefined ? parsePlatform(args.platform) : hostPlatform();
        const image = await pullBaseImage(args.reference, platform, registrySettings({ ...args, pull: true }, io.env, display.listener)).finally(() => display.close());
        io.stdout(`${image.reference}\t${image.manifestDigest}`);
      },
    )
    .command(
      'prune',
      'empty the build cache and the RUN cache mounts no build is using',
      (y) => y.options(pruneOptions),
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
      throw err ?? new UsageError(argv[0] === 'executor' ? kanikoUsage(message) : message);
    });
}

/**
 * yargs lays out a command's whole help text as the command's handler starts, in case a later
 * failure prints it. Our `.fail` throws instead, so that text is never shown, and measuring and
 * wrapping it costs every build tens of milliseconds. `--help` lays its text out afresh, unaffected.
 * The hook is internal to yargs: without it, the help is laid out as before.
 */
function withoutHelpLayoutOnRun<T>(y: Argv<T>): Argv<T> {
  const internal = (y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } }).getInternalMethods?.();
  const usage = internal?.getUsageInstance?.();
  if (usage?.cacheHelpMessage !== undefined) usage.cacheHelpMessage = () => undefined;
  return y;
}

const contextPositional = { type: 'string', default: '.', describe: 'build context directory' } as const;

/** A single-value flag given twice takes the last value, as in docker, buildx and kaniko, instead of becoming a list. */
function lastValueWins<T>(y: Argv<T>, options: object): Argv<T> {
  const single = Object.entries(options).filter(([, option]) => (option as { array?: boolean }).array !== true).map(([flag]) => flag).flatMap((flag) => [flag, flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]);
  return y.middleware((args) => {
    const values = args as Record<string, unknown>;
    for (const key of single) if (Array.isArray(values[key])) values[key] = (values[key] as unknown[]).at(-1);
  }, true);
}

/** Declares kaniko's flags that have no equivalent, so that giving one is answered by what to do instead. */
function withRefusedKanikoFlags<T>(y: Argv<T>): Argv<T> {
  for (const flag of Object.keys(kanikoRefused)) y.option(flag, { type: 'string', hidden: true });
  return y;
}

/** An unknown flag after `executor` is a kaniko flag tsbuild does not know: say so. */
function kanikoUsage(message: string): string {
  const unknown = /^Unknown arguments?: (.*)$/.exec(message);
  return unknown ? `kaniko flag(s) not known to tsbuild executor: ${unknown[1]} (docs/cli.md lists the flags it maps)` : message;
}
