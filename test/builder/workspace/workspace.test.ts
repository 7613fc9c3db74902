import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { ownedName } from '../../../builder/cache/local-store-owners.js';
import { Workspace } from '../../../builder/workspace/workspace.js';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { mountOverlay } from '../../../builder/rootfs/overlay.js';
import { mountPrivateTmpfs } from '../../../builder/host/tmpfs.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { OciRuntimeBackend } from '../../../builder/isolation/oci-runtime.js';
import type { RunResult } from '../../../builder/isolation/backend.js';
import { createBusyboxRootfs, createMountPoints } from '../../support/busybox-rootfs.js';

const workspaceModule = new URL('../../../builder/workspace/workspace.js', import.meta.url).href;

const runtime = await findOciRuntime();

let root: string;
let busybox: string;
before(async () => {
  assert.equal(process.getuid?.(), 0, 'these tests mount overlays and tmpfs: run them as root');
  assert.ok(runtime, 'these tests need a working OCI runtime (runc)');
  root = await realpath(await mkdtemp(path.join(tmpdir(), 'workspace-test-')));
  busybox = path.join(root, 'busybox');
  await createBusyboxRootfs(busybox);
  await createMountPoints(busybox);
});
after(async () => {
  assert.deepEqual(await mountsUnder(root), []);
  await rm(root, { recursive: true, force: true });
});

/** The entries of `root` but the busybox rootfs the tests share. */
async function entries(): Promise<string[]> {
  return (await readdir(root)).filter((name) => name !== 'busybox').sort();
}

/** A workspace name owned by `pid` started at `start`, in the form the workspace's own owner gives. */
function nameOwnedBy(pid: number, start: string): string {
  const [host, , , random] = ownedName().split('-');
  return `tsbuild-${host}-${pid}-${start}-${random}`;
}

/** The state of a workspace a build left when it died: an overlay of busybox with a tmpfs on top, a secret on a tmpfs, files. */
async function leftover(dir: string): Promise<string> {
  const [upper, work, merged, secrets] = ['upper', 'work', 'rootfs-1', 'secret-2'].map((name) => path.join(dir, name));
  for (const sub of [upper, work, merged, secrets]) await mkdir(sub, { recursive: true });
  await mountOverlay([busybox], upper, work, merged);
  assert.ok(await mountPrivateTmpfs(path.join(merged, 'tmp'), 4096));
  assert.ok(await mountPrivateTmpfs(secrets, 4096));
  await writeFile(path.join(secrets, 'secret'), 'left behind');
  return merged;
}

/** Starts `sleep` in a container on `rootfs`, recorded in a scratch directory of the workspace `dir`; resolves once it runs. */
async function startContainer(dir: string, rootfs: string): Promise<{ pid: number; result: Promise<RunResult> }> {
  const scratchDir = path.join(dir, 'run-scratch-3');
  await mkdir(scratchDir);
  const result = new OciRuntimeBackend({ runtimePath: runtime!.path }).run({
    rootfs, args: ['sleep', '987653'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] },
    hostname: 'buildhost', network: 'default', binds: [], scratchDir,
    stdout: () => {},
    stderr: () => {},
  });
  // The container's own pid namespace hides its host pid: find it by its unique argument.
  await waitFor('the container runs', async () => (await containerSleep()) !== undefined);
  return { pid: (await containerSleep())!, result };
}

async function containerSleep(): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === 'sleep\u0000987653\u0000') return Number(entry);
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, condition: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    if (await condition()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting until ${what}`);
}

test('a new workspace sweeps those of dead owners: containers, then mounts deepest first, then files', async () => {
  const gone = spawnSync('true').pid;
  const dead = path.join(root, nameOwnedBy(gone, '1'));
  // Our own pid with another start time: the pid was reused, its owner is gone.
  const reused = path.join(root, nameOwnedBy(process.pid, '1'));
  const foreign = [path.join(root, 'tsbuild-not-an-owner'), path.join(root, 'other')];
  for (const dir of [dead, reused, ...foreign]) await mkdir(dir);
  const container = await startContainer(dead, await leftover(dead));
  await leftover(reused);

  const workspace = await Workspace.create(root);
  try {
    assert.deepEqual(workspace.sweepFailures, []);
    assert.equal(alive(container.pid), false, 'the container’s process is gone');
    assert.equal((await container.result).exitCode, 128 + 9);
    assert.deepEqual(await mountsUnder(root), []);
    assert.deepEqual(await entries(), ['other', 'tsbuild-not-an-owner', path.basename(workspace.dir)].sort());
  } finally {
    await workspace.remove();
  }
  for (const dir of foreign) await rm(dir, { recursive: true });
});

test('concurrent builds never sweep each other; a build killed outright is swept by its watchdog', async () => {
  const mine = await Workspace.create(root);
  const script = `const { Workspace } = await import(${JSON.stringify(workspaceModule)}); const w = await Workspace.create(${JSON.stringify(root)}); console.log(w.dir);`;
  const other = spawn(process.execPath, ['--input-type=module', '-e', `${script} setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const otherDir = await new Promise<string>((resolve) => other.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
    await leftover(otherDir);
    // Each new workspace sweeps: none may touch a live owner's.
    const third = await Workspace.create(root);
    await third.remove();
    assert.deepEqual(await entries(), [path.basename(mine.dir), path.basename(otherDir)].sort());
    assert.equal((await mountsUnder(otherDir)).length, 3, 'the live workspace keeps its mounts');
    await writeFile(path.join(mine.dir, 'still-mine'), '');

    other.kill('SIGKILL');
    await waitFor('the killed build’s workspace is gone', async () => !(await entries()).includes(path.basename(otherDir)));
    assert.deepEqual(await mountsUnder(root), []);
    assert.equal(await readFile(path.join(mine.dir, 'still-mine'), 'utf8'), '');
  } finally {
    if (other.exitCode === null && other.signalCode === null) other.kill('SIGKILL');
    await mine.remove();
  }
  assert.deepEqual(await entries(), []);
});

test('leaves alone what another user or a link put there under a dead owner’s name', async () => {
  const gone = spawnSync('true').pid;
  const planted = path.join(root, nameOwnedBy(gone, '1'));
  const link = path.join(root, nameOwnedBy(gone, '2'));
  const target = path.join(root, 'target');
  await mkdir(planted);
  await chown(planted, 65534, 65534);
  await mkdir(target);
  await writeFile(path.join(target, 'kept'), '');
  await symlink(target, link);
  const workspace = await Workspace.create(root);
  await workspace.remove();
  assert.deepEqual(await entries(), [path.basename(link), path.basename(planted), 'target'].sort());
  assert.deepEqual(await readdir(target), ['kept']);
  for (const entry of [planted, link, target]) await rm(entry, { recursive: true });
});

test('the default parent is the temp directory', async () => {
  const workspace = await Workspace.create();
  try {
    assert.equal(path.dirname(workspace.dir), tmpdir());
  } finally {
    await workspace.remove();
  }
});

test('the watchdog started as Node (no sh on the host) sweeps a dead build’s workspace once its pipe closes', async () => {
  const gone = spawnSync('true').pid;
  const name = nameOwnedBy(gone, '1');
  await leftover(path.join(root, name));
  const main = new URL('../../../builder/workspace/workspace-watchdog-main.js', import.meta.url).pathname;
  const watchdog = spawn(process.execPath, [main, root, name], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  watchdog.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => watchdog.once('exit', resolve));
  assert.ok((await entries()).includes(name), 'nothing is swept while the pipe is open');
  watchdog.stdin.end();
  assert.equal(await exited, 0, stderr);
  assert.deepEqual(await entries(), []);
  assert.deepEqual(await mountsUnder(root), []);
});
