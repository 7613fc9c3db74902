/**
 * A build killed outright (SIGKILL: no handler runs) must leave nothing behind: no process of its
 * step, no runtime state or cgroup, no mount, no workspace, no secret in any file; and the next
 * build must still work and find nothing to clean.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';

const execFileAsync = promisify(execFile);
const runtime = await findOciRuntime();

let work: string;
let base: string;
before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests run builds with --isolation oci: run them as root');
  assert.ok(runtime, 'these tests need a working OCI runtime (runc)');
  work = await realpath(await mkdtemp(path.join(os.tmpdir(), 'tsbuild-kill9-')));
  base = path.join(work, 'busybox');
  await writeBusyboxImage(base);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Build {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `tsbuild build --isolation oci` on a context holding `dockerfile`, with its own cache and temp directories. */
async function startBuild(name: string, dockerfile: string, env: NodeJS.ProcessEnv, extraArgs: readonly string[] = []): Promise<Build> {
  const context = path.join(work, name);
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  const args = ['build', '--isolation', 'oci', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=oci,dest=${path.join(work, `${name}-out`)}`, '--progress', 'plain', ...extraArgs, context];
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist/cli/main.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exited };
}

/** Builds to completion and checks it succeeded. */
async function buildOk(name: string, dockerfile: string, env: NodeJS.ProcessEnv, extraArgs: readonly string[] = []): Promise<void> {
  const { code, stderr } = await (await startBuild(name, dockerfile, env, extraArgs)).exited;
  assert.equal(code, 0, stderr);
  await validateLayout(path.join(work, `${name}-out`));
}

/** The processes below `root` whose command line has the argument `arg`. */
async function descendantsWithArg(root: number, arg: string): Promise<number[]> {
  const parents = new Map<number, number>();
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(arg)) found.push(Number(entry));
  }
  const below = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  return found.filter(below);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Lines of /proc/mounts that name `dir` or anything below it. */
async function mountsMentioning(dir: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((line) => line.includes(` ${dir}/`) || line.includes(` ${dir} `));
}

/** The recorded container of the step running in a workspace in `tmp`: its runtime state directory and id. */
async function runningContainer(tmp: string): Promise<{ stateDir: string; id: string }> {
  for (const workspace of await readdir(tmp)) {
    for (const entry of await readdir(path.join(tmp, workspace))) {
      const record = await readFile(path.join(tmp, workspace, entry, 'oci-container.json'), 'utf8').catch(() => undefined);
      if (record !== undefined) return { stateDir: path.join(tmp, workspace, entry, 'state'), id: (JSON.parse(record) as { id: string }).id };
    }
  }
  assert.fail('no container record in any workspace');
}

/** The cgroup directories of process `pid` whose path names the container `id`. */
async function containerCgroups(pid: number, id: string): Promise<string[]> {
  const lines = (await readFile(`/proc/${pid}/cgroup`, 'utf8')).trim().split('\n');
  return lines.flatMap((line) => {
    const [, controllers = '', cgroup = ''] = line.split(':');
    if (!cgroup.includes(id)) return [];
    const hierarchy = controllers === '' ? 'unified' : controllers.replace(/^name=/, '');
    return [path.join('/sys/fs/cgroup', hierarchy, cgroup)];
  });
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

/** Everything a dead build could have left, checked: workspaces and temp files, mounts, runtime state. */
async function assertNothingLeft(tmp: string, container: { stateDir: string; id: string }): Promise<void> {
  assert.deepEqual(await readdir(tmp), [], 'no workspace or other file is left in the temp directory');
  assert.deepEqual(await mountsMentioning(work), [], 'nothing stays mounted in the temp or cache directory');
  const state = await execFileAsync(runtime!.path, ['--root', container.stateDir, 'state', container.id]).then(() => 'exists', () => 'gone');
  assert.equal(state, 'gone', 'the runtime knows no such container');
  const listed = await execFileAsync(runtime!.path, ['--root', container.stateDir, 'list', '-q']);
  assert.equal(listed.stdout.trim(), '', 'the runtime lists no container');
}

test('kill -9 during RUN: the step dies, mounts and workspace go; builds running meanwhile and afterwards are untouched', { timeout: 300_000 }, async (t) => {
  const cacheDir = path.join(work, 'cache-run');
  const tmp = path.join(work, 'tmp-run');
  await mkdir(tmp);
  const env = { TSBUILD_CACHE_DIR: cacheDir, TMPDIR: tmp };
  const build = await startBuild('sleeper', 'FROM busybox\nRUN echo started && sleep 987651\n', env);
  let sleeping: number[];
  try {
    sleeping = await waitFor('the step runs', async () => {
      const pids = await descendantsWithArg(build.child.pid!, '987651');
      return pids.length > 0 ? pids : undefined;
    });
  } catch (error) {
    build.child.kill('SIGKILL');
    throw error;
  }
  const container = await runningContainer(tmp);
  const cgroups = await containerCgroups(sleeping[0]!, container.id);
  assert.ok(cgroups.length > 0, 'the runtime made cgroups for the container');
  assert.ok(await mountsMentioning(tmp).then((lines) => lines.some((line) => line.startsWith('overlay '))), 'the step runs on an overlay');

  // A build started meanwhile with the same cache sweeps only dead builds' workspaces.
  await buildOk('meanwhile', 'FROM busybox\nRUN echo meanwhile > /meanwhile\n', env);
  assert.deepEqual(sleeping.filter(alive), sleeping, 'the other build left the running step alone');

  build.child.kill('SIGKILL');
  assert.equal((await build.exited).signal, 'SIGKILL');
  const killedAt = Date.now();
  await waitFor('the step is gone', async () => (sleeping.some(alive) ? undefined : true), 10_000);
  await waitFor('the workspace is swept', async () => ((await readdir(tmp)).length === 0 ? true : undefined), 10_000);
  const sweptMs = Date.now() - killedAt;
  await assertNothingLeft(tmp, container);
  for (const cgroup of cgroups) assert.equal(await exists(cgroup), false, `cgroup ${cgroup} is removed`);
  t.diagnostic(`step and workspace gone ${sweptMs} ms after the kill`);

  await buildOk('after', 'FROM busybox\nRUN echo after > /after\n', env);
  await assertNothingLeft(tmp, container);
});

test('kill -9 during a RUN with secrets and an SSH agent: no file anywhere holds the secret, no tmpfs or socket stays', { timeout: 300_000 }, async (t) => {
  const cacheDir = path.join(work, 'cache-secret');
  const tmp = path.join(work, 'tmp-secret');
  await mkdir(tmp);
  const secret = `kill9-secret-${randomBytes(12).toString('hex')}`;
  const env = { TSBUILD_CACHE_DIR: cacheDir, TMPDIR: tmp, KILL9_TOKEN: secret };
  // An SSH agent socket too: the step's relay socket lives in the workspace.
  const agentSocket = path.join(work, 'agent.sock');
  const agent = createServer((connection) => connection.end());
  await new Promise<void>((resolve) => agent.listen(agentSocket, resolve));
  t.after(() => agent.close());
  const dockerfile = 'FROM busybox\nRUN --mount=type=secret,id=tok --mount=type=secret,id=tok,env=TOK,target=/tok --mount=type=ssh test -s /run/secrets/tok && test -S "$SSH_AUTH_SOCK" && sleep 987652\n';
  const build = await startBuild('secret', dockerfile, env, ['--secret', 'id=tok,env=KILL9_TOKEN', '--ssh', `default=${agentSocket}`]);
  let sleeping: number[];
  try {
    sleeping = await waitFor('the step runs', async () => {
      const pids = await descendantsWithArg(build.child.pid!, '987652');
      return pids.length > 0 ? pids : undefined;
    });
  } catch (error) {
    build.child.kill('SIGKILL');
    throw error;
  }
  const container = await runningContainer(tmp);
  const tmpfsMounts = (await mountsMentioning(tmp)).filter((line) => line.startsWith('tmpfs ')).map((line) => path.basename(line.split(' ')[1]!));
  assert.equal(tmpfsMounts.filter((name) => name.startsWith('secret-')).length, 2, `both secret files are on a tmpfs (${tmpfsMounts.join(', ')})`);
  assert.ok(tmpfsMounts.some((name) => name.startsWith('run-scratch-')), 'the bundle, whose config holds TOK, is on a tmpfs');
  const relays = (await readdir(tmp, { recursive: true })).filter((file) => file.endsWith('agent.sock'));
  assert.equal(relays.length, 1, 'the SSH relay socket is in the workspace');

  build.child.kill('SIGKILL');
  await build.exited;
  await waitFor('the step is gone', async () => (sleeping.some(alive) ? undefined : true), 10_000);
  await waitFor('the workspace is swept', async () => ((await readdir(tmp)).length === 0 ? true : undefined), 10_000);
  await assertNothingLeft(tmp, container);
  const searched = [...new Set(['/tmp', os.tmpdir(), cacheDir])];
  const grep = await execFileAsync('grep', ['-rlFs', '-e', secret, ...searched], { maxBuffer: 1 << 24 }).catch((error: { stdout: string }) => error);
  assert.equal(grep.stdout, '', `no file under ${searched.join(', ')} holds the secret`);

  await buildOk('secret-after', 'FROM busybox\nRUN --mount=type=secret,id=tok test -s /run/secrets/tok\n', env, ['--secret', 'id=tok,env=KILL9_TOKEN']);
  await assertNothingLeft(tmp, container);
});
