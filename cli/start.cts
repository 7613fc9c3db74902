/**
 * What bin/tsbuild starts: answers `--version`, else runs the bundled CLI (dist/cli-bundle, made
 * by scripts/bundle-cli.ts). The bundle is compiled with V8's code cache, kept beside it as
 * Python keeps its bytecode: parsing its 2 MB of JavaScript, and compiling the functions a run
 * needs, is then replaced by reading what an earlier run compiled. A run writes the cache as it
 * exits, where it may write, when it found none for this node and these node options; a build
 * also replaces one written by another command, which compiled less of the bundle. Without a
 * cache, or with one V8 rejects, the bundle is compiled as usual.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';
import { answerVersion } from './version-flag.cjs';

interface BundledCli {
  runCommandLine(entryScript: string): Promise<void>;
}

/** Commands that build no image; the command line of any other builds one (`build`, `executor`, or none: build is the default). */
const nonBuildCommands = new Set(['plan', 'pull', 'prune', 'images', 'inspect']);

/** Whether `args` ask for an image to be built: then most of the bundle runs, and its cache is worth keeping. */
function buildsImage(args: readonly string[]): boolean {
  if (args.some((arg) => arg === '--help' || arg === '-h')) return false;
  const command = args.find((arg) => !arg.startsWith('-'));
  return command === undefined || !nonBuildCommands.has(command);
}

/**
 * Where the code caches of `bundle` written by a build and by another command are kept, for this
 * node and these node options. V8 checks its own version and options, and only the source's
 * length: the names also hold the bundle file's identity, so a rebuilt or reinstalled bundle never
 * meets the bytecode of another.
 */
function codeCachePaths(bundle: string): { readonly build: string; readonly command: string } {
  const { size, mtimeMs, ino } = statSync(bundle);
  const identity = JSON.stringify([size, mtimeMs, ino, process.version, process.arch, process.execArgv]);
  const prefix = `${bundle}.${createHash('sha256').update(identity).digest('hex').slice(0, 16)}`;
  return { build: `${prefix}.build.cache`, command: `${prefix}.command.cache` };
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Writes what `script` has compiled by now to `file`, whole or not at all, if `file`'s folder is
 * still the one `folder` describes: after a build in place, whose steps ran as this container's
 * root, the path may lead elsewhere. A folder it may not write is left alone.
 */
function saveCodeCache(script: Script, file: string, folder: Stats): void {
  const now = statSync(path.dirname(file), { throwIfNoEntry: false });
  if (now === undefined || now.dev !== folder.dev || now.ino !== folder.ino) return;
  const temp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, script.createCachedData(), { flag: 'wx' });
    renameSync(temp, file);
  } catch {
    rmSync(temp, { force: true });
  }
}

/** Evaluates the CommonJS bundle as node's own loader would, with the best usable code cache. */
function loadBundle(bundle: string, building: boolean): BundledCli {
  const caches = codeCachePaths(bundle);
  const fromBuild = readIfPresent(caches.build);
  const cachedData = fromBuild ?? readIfPresent(caches.command);
  // The bundle is ASCII (see scripts/bundle-cli.ts): read as Latin-1, it needs no UTF-8 decoding.
  const script = new Script(Module.wrap(readFileSync(bundle, 'latin1')), { filename: bundle, ...(cachedData ? { cachedData } : {}) });
  const kept = cachedData !== undefined && !script.cachedDataRejected && (fromBuild !== undefined || !building);
  // At exit the script holds every function this run compiled, not only the top level.
  if (!kept) {
    const folder = statSync(path.dirname(bundle));
    process.once('exit', () => saveCodeCache(script, building ? caches.build : caches.command, folder));
  }
  const bundleModule = { exports: {} as BundledCli };
  const evaluate = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  evaluate.call(bundleModule.exports, bundleModule.exports, Module.createRequire(bundle), bundleModule, bundle, path.dirname(bundle));
  return bundleModule.exports;
}

const args = process.argv.slice(2);
if (!answerVersion(args)) {
  void loadBundle(path.join(__dirname, '../cli-bundle/tsbuild.cjs'), buildsImage(args)).runCommandLine(__filename);
}
