import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { StepSandbox } from '../../../builder/isolation/backend.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { OciRuntimeBackend } from '../../../builder/isolation/oci-runtime.js';
import { TsbuildError } from '../../../layers/errors.js';
import { createBusyboxRootfs, createMountPoints } from '../../support/busybox-rootfs.js';
import { requires } from '../../support/requirement.js';
import { runShellStep } from '../../support/sandbox-step.js';

const runtime = await findOciRuntime();

/** The command lines of every process whose pid namespace is not ours (a container's), as `argv.join(' ')`. */
async function containerCommandLines(): Promise<string[]> {
  const ours = await readlink('/proc/self/ns/pid');
  const lines: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const namespace = await readlink(`/proc/${name}/ns/pid`).catch(() => ours);
    if (namespace === ours) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    lines.push(cmdline.split('\0').filter((arg) => arg !== '').join(' '));
  }
  return lines;
}

// As root (as CI runs) a missing runtime is a failure; only an unprivileged run skips, saying why.
describe('OCI step sandbox', { skip: requires(process.getuid?.() === 0 ? false : 'needs root') }, () => {
  let dir: string;
  let rootfs: string;
  let scratches = 0;

  before(async () => {
    assert.ok(runtime, 'no working OCI runtime (runc or crun) here');
    dir = await realpath(await mkdtemp(join(tmpdir(), 'oci-sandbox-test-')));
    rootfs = join(dir, 'rootfs');
    await createBusyboxRootfs(rootfs);
    await createMountPoints(rootfs);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function open(killGraceMs?: number): Promise<StepSandbox> {
    const scratchDir = join(dir, `scratch-${scratches++}`);
    await mkdir(scratchDir);
    const backend = new OciRuntimeBackend({ runtimePath: runtime!.path, ...(killGraceMs !== undefined ? { killGraceMs } : {}) });
    return backend.openSandbox({ rootfs, hostname: 'buildhost', network: 'default', binds: [], scratchDir });
  }


  it('runs consecutive steps in one container, each with its own user, environment and directory', async () => {
    const sandbox = await open();
    try {
      const first = await runShellStep(sandbox, 'readlink /proc/self/ns/pid; id -u; id -g; pwd; echo "$A"', { env: ['PATH=/bin', 'A=one', 'A=shadowed'], cwd: '/tmp', user: { uid: 1000, gid: 1001, additionalGids: [] } });
      const second = await runShellStep(sandbox, 'readlink /proc/self/ns/pid; id -u; id -g; pwd; echo "${A-unset}"');
      const [firstNamespace, ...firstRest] = first.stdout.trim().split('\n');
      const [secondNamespace, ...secondRest] = second.stdout.trim().split('\n');
      assert.equal(firstNamespace, secondNamespace, 'both steps see the same pid namespace: one container');
      assert.notEqual(firstNamespace, await readlink('/proc/self/ns/pid'));
      assert.deepEqual(firstRest, ['1000', '1001', '/tmp', 'one']);
      assert.deepEqual(secondRest, ['0', '0', '/', 'unset']);
      assert.equal((await runShellStep(sandbox, 'exit 7')).exitCode, 7);
      assert.equal((await runShellStep(sandbox, 'kill -9 $$')).exitCode, 137);
    } finally {
      await sandbox.close();
    }
  });

  it('kills what a step left running before the next step starts, and removes what it added to /dev', async () => {
    const sandbox = await open();
    try {
      // One holds the output pipe, one does not: neither may keep the step from ending.
      const first = await runShellStep(sandbox, 'sleep 31337 & sleep 31338 >/dev/null 2>&1 & (sleep 1; echo late > /late) >/dev/null 2>&1 & echo x > /dev/shm/left; echo y > /dev/left; echo started');
      assert.equal(first.stdout, 'started\n');
      assert.deepEqual((await containerCommandLines()).filter((line) => line.startsWith('sleep')), []);
      const second = await runShellStep(sandbox, 'sleep 2; ls /; for p in /proc/[0-9]*; do cat $p/cmdline; echo; done; ls /dev/shm /dev');
      assert.equal(second.exitCode, 0, second.stderr);
      assert.doesNotMatch(second.stdout, /sleep31337|sleep31338/);
      assert.doesNotMatch(second.stdout, /\blate\b|\bleft\b/);
    } finally {
      await sandbox.close();
    }
  });

  it('reaps the processes a step orphans while it runs', async () => {
    const sandbox = await open();
    try {
      // Each subshell exits at once, orphaning its sleep to PID 1; the step then waits for their zombies to go.
      const script = [
        'for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.01 &); done; sleep 0.2',
        'zombies() { cat /proc/[0-9]*/stat 2>/dev/null | grep -c ") Z "; }',
        'tries=0; while [ "$(zombies)" != 0 ] && [ $tries -lt 300 ]; do sleep 0.1; tries=$((tries + 1)); done; zombies',
      ].join('\n');
      assert.equal((await runShellStep(sandbox, script)).stdout, '0\n');
    } finally {
      await sandbox.close();
    }
  });

  it('is spent once a step changes what later steps would inherit from the server', async () => {
    for (const change of ['renice -n 7 -p 1', 'ionice -c 3 -p 1', 'echo 500 > /proc/1/oom_score_adj']) {
      const sandbox = await open();
      try {
        assert.equal((await runShellStep(sandbox, 'renice -n 3 -p $$ && ionice -c 3 -p $$ && echo 400 > /proc/self/oom_score_adj')).exitCode, 0);
        assert.equal(sandbox.spent, false, 'a step may change itself');
        assert.equal((await runShellStep(sandbox, `${change} && echo changed`)).stdout, 'changed\n');
        assert.equal(sandbox.spent, true, change);
        await assert.rejects(runShellStep(sandbox, 'true'), /spent/);
      } finally {
        await sandbox.close();
      }
    }
  });

  it('keeps the server out of reach: no descriptor, memory, environment or file of it', async () => {
    const sandbox = await open();
    try {
      const probe = await runShellStep(sandbox, 'for f in /proc/1/fd/*; do readlink $f >/dev/null 2>&1 && echo fd-readable; done; cat /proc/1/maps >/dev/null 2>&1 && echo maps-readable; cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable; readlink /proc/1/exe >/dev/null 2>&1 && echo exe-readable; ls -l /proc/self/fd/; ls -a /');
      assert.doesNotMatch(probe.stdout, /readable/);
      assert.doesNotMatch(probe.stdout, /node|koffi|step-server|\/work|\/usr\/lib/);
      // Root with the default capabilities still cannot signal the server away, nor open Node's inspector in it (SIGUSR1).
      const kill = await runShellStep(sandbox, 'for signal in 9 15 2 10 1 3; do kill -$signal 1; done; sleep 1; echo alive; grep -i " 0100007F:2405 .* 0A " /proc/net/tcp');
      assert.equal(kill.stdout, 'alive\n', 'nothing listens on the inspector port');
      const status = (await runShellStep(sandbox, 'cat /proc/1/status')).stdout;
      const mask = (field: string): bigint => BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1] ?? 'x'}`);
      const usr1 = 1n << 9n;
      assert.equal(mask('SigIgn') & usr1, usr1, 'SIGUSR1 (Node\'s inspector) is ignored');
      assert.equal(mask('SigCgt') & usr1, 0n);
      assert.equal((await runShellStep(sandbox, 'true')).exitCode, 0, 'the server survives');
    } finally {
      await sandbox.close();
    }
  });

  it('reports a missing executable as the runtime would, and keeps serving', async () => {
    const sandbox = await open();
    try {
      await assert.rejects(runShellStep(sandbox, '', { args: ['no-such-command'] }), (error: Error) => {
        assert.ok(error instanceof TsbuildError && error.code === 'ISOLATION');
        assert.match(error.message, /^the OCI runtime could not run the process: exec: "no-such-command": executable file not found in \$PATH$/);
        return true;
      });
      assert.equal((await runShellStep(sandbox, 'echo ok')).stdout, 'ok\n');
    } finally {
      await sandbox.close();
    }
  });

  it('an abort stops the step, then the container, and close deletes it', async () => {
    const sandbox = await open(500);
    const abort = new AbortController();
    const reason = new TsbuildError('INTERRUPTED', 'build interrupted');
    const running = runShellStep(sandbox, 'trap "" TERM; sleep 31339; echo never', { signal: abort.signal });
    // Aborted once the step runs: its sleep is visible in the container.
    while (!(await containerCommandLines()).some((line) => line === 'sleep 31339')) await new Promise((resolve) => setTimeout(resolve, 20));
    abort.abort(reason);
    await assert.rejects(running, (error) => error === reason);
    await sandbox.close();
    assert.deepEqual((await containerCommandLines()).filter((line) => line.includes('31339')), []);
    const scratch = join(dir, `scratch-${scratches - 1}`);
    assert.deepEqual(await readdir(scratch).catch(() => []), [], 'no state, bundle or container record is left');
  });

  it('a server that dies fails the step with a one-line error, and close still cleans up', async () => {
    const sandbox = await open();
    const stopped = runShellStep(sandbox, 'sleep 31340');
    let server: string | undefined;
    while (server === undefined) {
      server = (await containerCommandLines()).find((line) => line.includes('step-server'));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The server is the container's PID 1: the runtime's kill reaches it.
    const state = join(dir, `scratch-${scratches - 1}`, 'state');
    const id = (await readdir(state))[0]!;
    const { execFile } = await import('node:child_process');
    await new Promise((resolve) => execFile(runtime!.path, ['--root', state, 'kill', id, '9'], resolve));
    await assert.rejects(stopped, (error: Error) => {
      assert.ok(error instanceof TsbuildError && error.code === 'ISOLATION');
      assert.match(error.message, /^the OCI runtime's step sandbox stopped \(/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
    await sandbox.close();
    assert.deepEqual((await containerCommandLines()).filter((line) => line.includes('31340') || line.includes('step-server')), []);
  });
});
