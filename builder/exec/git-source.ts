/**
 * ADD from a git repository, as BuildKit does it: `URL[#REF][:SUBDIR]`, where URL is a git or ssh
 * URL, `user@host:path`, or an http(s) URL whose path ends in `.git`. The repository is cloned with
 * the host's `git`, the ref (branch, tag or commit; the remote's HEAD by default) is checked out
 * with its submodules, and the tree is given fixed modes and the commit's time so that the same
 * commit always gives the same files.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, lutimes, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { commandFailure, TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { isUrl } from './fetch-url.js';
import { resolveInRoot } from '../fs/resolve-path.js';

const execFileAsync = promisify(execFile);

export interface GitSource {
  /** What the user wrote, for messages. */
  readonly source: string;
  readonly url: string;
  /** Branch, tag or commit; the remote's HEAD when absent. */
  readonly ref?: string;
  /** Directory inside the repository whose contents are added; the whole tree when absent. */
  readonly subdir?: string;
}

/** Whether an ADD source names a git repository rather than a file or a URL to download. */
export function isGitSource(source: string): boolean {
  if (/^(git|ssh):\/\//i.test(source) || /^[\w.-]+@[\w.-]+:/.test(source)) return true;
  if (!isUrl(source)) return false;
  return /\.git\/?$/.test(source.replace(/[#?].*$/, ''));
}

/** Splits `URL#REF:SUBDIR` into its parts. */
export function parseGitSource(source: string): GitSource {
  const hash = source.indexOf('#');
  if (hash < 0) return { source, url: source };
  const fragment = source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  return { source, url: source.slice(0, hash), ...(ref !== '' ? { ref } : {}), ...(subdir !== '' ? { subdir } : {}) };
}

/**
 * Clones `git` into the empty directory `dir` and returns the directory to add: `dir` itself or
 * its subdir. `.git` is removed unless `keepGitDir`. With `checksum`, the commit must be that one.
 */
export async function cloneGitSource(git: GitSource, dir: string, options: { keepGitDir: boolean; checksum?: string; env: NodeJS.ProcessEnv }): Promise<string> {
  const run = (args: readonly string[], cwd = dir): Promise<string> => runGit(git, args, cwd, options.env);
  await run(['clone', '--quiet', '--no-checkout', '--', git.url, dir], path.dirname(dir));
  const commit = await resolveCommit(git, run);
  if (options.checksum !== undefined && options.checksum !== commit) {
    throw new TsbuildError('ADD_CHECKSUM', `ADD ${git.source}: expected commit ${options.checksum}, got ${commit}`);
  }
  await run(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', '--detach', commit]);
  await run(['submodule', 'update', '--quiet', '--init', '--recursive']);
  const committedAt = new Date(Number(await run(['log', '-1', '--format=%ct', commit])) * 1000);
  if (!options.keepGitDir) await rm(path.join(dir, '.git'), { recursive: true, force: true });
  await normaliseTree(dir, committedAt);
  if (git.subdir === undefined) return dir;
  const subdir = path.join(dir, await resolveInRoot(dir, git.subdir, 'context', true));
  if (!(await lstat(subdir).catch(() => undefined))?.isDirectory()) {
    throw new TsbuildError('SOURCE_NOT_FOUND', `ADD ${git.source}: ${git.subdir} is not a directory in the repository`);
  }
  return subdir;
}

/** The commit a ref names: a remote branch, a tag, or a commit; the remote's HEAD without one. */
async function resolveCommit(git: GitSource, run: (args: readonly string[]) => Promise<string>): Promise<string> {
  const candidates = git.ref === undefined ? ['HEAD'] : [`refs/remotes/origin/${git.ref}`, `refs/tags/${git.ref}`, git.ref];
  for (const candidate of candidates) {
    const commit = await run(['rev-parse', '--verify', '--quiet', '--end-of-options', `${candidate}^{commit}`]).catch(() => undefined);
    if (commit) return commit;
  }
  throw new TsbuildError('SOURCE_NOT_FOUND', `ADD ${git.source}: ref ${JSON.stringify(git.ref ?? 'HEAD')} not found in ${git.url}`);
}

/**
 * Gives every entry the modes git records (0755 for executables and directories, 0644 for other
 * files) and the commit's time, whatever the umask and the clock said during the checkout.
 */
async function normaliseTree(dir: string, time: Date): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      await normaliseTree(full, time);
      await chmod(full, 0o755);
    } else if (entry.isFile()) {
      await chmod(full, (await lstat(full)).mode & 0o100 ? 0o755 : 0o644);
    }
    await lutimes(full, time, time);
  }
  await lutimes(dir, time, time);
}

/** Runs git without prompts (a missing credential fails instead of waiting), returning its trimmed output. */
async function runGit(git: GitSource, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await execFileAsync('git', args, { cwd, env: { ...env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' }, maxBuffer: 16 * 1024 * 1024 });
    return stdout.trim();
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) throw new TsbuildError('ADD_GIT', `ADD ${git.source}: git is not installed`, { cause: error });
    throw new TsbuildError('ADD_GIT', `ADD ${git.source}: git ${args[0] === '-c' ? args[2] : args[0]} failed: ${commandFailure(error, 'last')}`, { cause: error });
  }
}
