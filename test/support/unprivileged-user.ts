/**
 * Unprivileged system users for tests that run tsbuild as someone other than root. Set-up is
 * idempotent: an existing user is reused, and subordinate ids are only ever added, never removed.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseSubordinateIds, type IdRange } from '../../builder/isolation/userns.js';
import { withLockFile } from '../../layers/layout-lock.js';
import { repoRoot } from './repo-root.js';

const execFileAsync = promisify(execFile);

/** Start of the subordinate ids the set-up hands out when the files hold none after it. */
const firstSubordinateId = 100000;
const subordinateCount = 65536;

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** The user's first subordinate uid range, if it has one. */
  readonly subuids: IdRange | undefined;
}

async function readOrEmpty(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

async function lookup(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const { stdout } = await execFileAsync('getent', ['passwd', name]);
    const [, , uid, gid] = stdout.trim().split(':');
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** The first id after every range in both files, at least 100000. */
async function freeSubordinateStart(): Promise<number> {
  let next = firstSubordinateId;
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    for (const line of (await readOrEmpty(file)).split('\n')) {
      const [, start, count] = line.split(':');
      if (start !== undefined && count !== undefined) next = Math.max(next, Number(start) + Number(count));
    }
  }
  return next;
}

/**
 * Makes sure the system user `name` exists (`useradd --system`, no home, no login shell) and, when
 * `subordinateIds` is true, has a range in both /etc/subuid and /etc/subgid (`usermod
 * --add-subuids/--add-subgids`, 65536 ids after every existing range). Needs root.
 */
export async function ensureUser(name: string, subordinateIds: boolean): Promise<TestUser> {
  // Test files run in parallel: one at a time may edit the user database and pick id ranges.
  return withLockFile(join(tmpdir(), 'tsbuild-test-users.lock'), () => ensureUserLocked(name, subordinateIds));
}

async function ensureUserLocked(name: string, subordinateIds: boolean): Promise<TestUser> {
  if ((await lookup(name)) === undefined) {
    await execFileAsync('useradd', ['--system', '--user-group', '--shell', '/usr/sbin/nologin', '--home-dir', '/nonexistent', '--no-create-home', name]);
  }
  const ids = (await lookup(name))!;
  const ranges = async (file: string): Promise<IdRange[]> => parseSubordinateIds(await readOrEmpty(file), { name, id: ids.uid });
  if (subordinateIds && ((await ranges('/etc/subuid')).length === 0 || (await ranges('/etc/subgid')).length === 0)) {
    const start = await freeSubordinateStart();
    const span = `${start}-${start + subordinateCount - 1}`;
    const add = [...((await ranges('/etc/subuid')).length === 0 ? ['--add-subuids', span] : []), ...((await ranges('/etc/subgid')).length === 0 ? ['--add-subgids', span] : [])];
    await execFileAsync('usermod', [...add, name]);
  }
  return { name, ...ids, subuids: (await ranges('/etc/subuid'))[0] };
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command args` as `user` (`setpriv --reuid --regid --init-groups`) with only `env` set. */
export async function runAs(user: TestUser, command: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  const setpriv = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), command, ...args];
  try {
    const { stdout, stderr } = await execFileAsync('setpriv', setpriv, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof code === 'number' ? code : -1, stdout: stdout ?? '', stderr: stderr ?? '' };
  }
}

/** PIDs of live processes whose real uid is `uid` or inside `range`. */
export async function processesOf(uid: number, range?: IdRange): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readOrEmpty(`/proc/${name}/status`);
    const real = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    if (real === uid || (range !== undefined && real >= range.start && real < range.start + range.count)) pids.push(Number(name));
  }
  return pids;
}

/** Why tests that build as an unprivileged user cannot run here, or false when they can. */
export async function unprivilegedSkipReason(): Promise<string | false> {
  if (process.getuid?.() !== 0) return 'needs root to create the unprivileged test users';
  try {
    await execFileAsync('sh', ['-c', 'command -v setpriv useradd usermod newuidmap newgidmap unshare umoci']);
    return false;
  } catch {
    return 'needs setpriv, useradd, usermod, newuidmap, newgidmap, unshare and umoci';
  }
}

/** Runs `command args` as `user`, or as this (root) process when `user` is undefined, with only `env` set. */
export async function runAsOrRoot(user: TestUser | undefined, command: string, args: readonly string[], env: Record<string, string>, cwd: string): Promise<RunResult> {
  if (user) return runAs(user, command, args, env, cwd);
  try {
    const { stdout, stderr } = await execFileAsync(command, [...args], { env, cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof code === 'number' ? code : -1, stdout: stdout ?? '', stderr: stderr ?? '' };
  }
}

/**
 * Builds a context as `user` through the CLI with `--isolation rootless`: `root` gets the user's
 * home, temp dir and the context (holding `files`), all owned by the user, and the image goes to
 * the OCI layout `root/out`, tagged `t:1`. `buildContexts` are passed as `--build-context`.
 */
export async function buildAsUser(user: TestUser, root: string, files: Record<string, string>, buildContexts: readonly string[]): Promise<{ dest: string; result: RunResult }> {
  const dirs = { home: join(root, 'home'), tmp: join(root, 'tmp'), context: join(root, 'context') };
  for (const dir of [root, ...Object.values(dirs)]) {
    await mkdir(dir, { recursive: true });
    await chown(dir, user.uid, user.gid);
  }
  await chmod(dirname(root), 0o755);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dirs.context, name), text);
  const dest = join(root, 'out');
  const args = [
    join(repoRoot(), 'dist/cli/main.js'), '--no-cache', '--isolation', 'rootless', ...buildContexts.flatMap((c) => ['--build-context', c]),
    '-t', 't:1', '-o', `type=oci,dest=${dest}`, '--compression-level', '1', dirs.context,
  ];
  const result = await runAs(user, process.execPath, args, { HOME: dirs.home, TMPDIR: dirs.tmp, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, root);
  return { dest, result };
}
