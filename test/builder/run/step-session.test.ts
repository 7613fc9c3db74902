import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { LayerEntry } from '../../../layers/entry.js';
import { StageRun } from '../../../builder/exec/stage-run.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { OciRuntimeBackend } from '../../../builder/isolation/oci-runtime.js';
import type { PlannedStage, RunStep } from '../../../builder/model/plan.js';
import { runStepEntries, type RunStepContext } from '../../../builder/run/run-step.js';
import { Workspace } from '../../../builder/workspace/workspace.js';
import { createBusyboxRootfs } from '../../support/busybox-rootfs.js';
import { requires } from '../../support/requirement.js';
import { runStep } from '../cache/copy-fixture.js';

const runtime = await findOciRuntime();

/**
 * A stage's RUN steps through `runStepEntries`, as the executor runs them, with an OCI runtime
 * wrapped in a script that logs its every invocation: `run` starts one container.
 */
describe('RUN steps sharing one container', { skip: requires(process.getuid?.() === 0 ? false : 'needs root') }, () => {
  let work: string;
  let rootfs: string;
  let runtimeLog: string;
  let workspace: Workspace;
  let run: StageRun;
  let ctx: RunStepContext;
  const output: string[] = [];

  before(async () => {
    assert.ok(runtime, 'no working OCI runtime (runc or crun) here');
    work = await realpath(await mkdtemp(path.join(os.tmpdir(), 'tsbuild-step-session-')));
    rootfs = path.join(work, 'rootfs');
    await createBusyboxRootfs(rootfs);
    runtimeLog = path.join(work, 'runtime.log');
    const wrapper = path.join(work, 'runtime');
    await writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${runtimeLog}\nexec ${runtime!.path} "$@"\n`);
    await chmod(wrapper, 0o755);
    workspace = await Workspace.create(work);
    const stage = { index: 0, steps: [] } as unknown as PlannedStage;
    run = new StageRun(stage, [], [], async () => ({ dir: rootfs, release: async () => {} }), { kind: 'scratch' });
    ctx = {
      backend: new OciRuntimeBackend({ runtimePath: wrapper, killGraceMs: 500 }),
      workspace,
      output: (_stream, text) => output.push(text),
      mounts: { cacheDir: path.join(work, 'run-cache'), secrets: new Map(), sshAgents: new Map(), bindSources: [] },
    };
  });

  after(async () => {
    await run.release();
    await workspace.remove();
    await rm(work, { recursive: true, force: true });
  });

  /** How many containers the runtime started so far. */
  async function containersStarted(): Promise<number> {
    const log = await readFile(runtimeLog, 'utf8').catch(() => '');
    return log.split('\n').filter((line) => / run /.test(` ${line} `)).length;
  }

  function shell(line: number, script: string, overrides: Partial<RunStep> = {}): RunStep {
    return runStep('Dockerfile', line, { args: ['/bin/sh', '-c', script], env: ['PATH=/bin:/usr/bin'], workdir: '/', ...overrides });
  }

  const paths = (entries: readonly LayerEntry[]): string[] => entries.map((entry) => entry.path).sort();

  test('consecutive steps share a container; a --mount step runs alone between them; each step has its own user, env and directory', async () => {
    const first = await runStepEntries(shell(2, 'echo one > /one; id -u > /uid1; pwd > /pwd1; echo "$V" > /v1', { env: ['PATH=/bin', 'V=first'], workdir: '/tmp' }), run, ctx);
    const second = await runStepEntries(shell(3, 'id -u > /tmp/uid2; id -G > /tmp/groups2; pwd > /tmp/pwd2; echo "${V-unset}" > /tmp/v2', { user: '1000:1000', workdir: '/home/app' }), run, ctx);
    assert.equal(await containersStarted(), 1, 'the second step ran in the first one\'s container');
    assert.deepEqual(paths(first), ['one', 'pwd1', 'uid1', 'v1']);
    assert.deepEqual(paths(second), ['home', 'home/app', 'tmp', 'tmp/groups2', 'tmp/pwd2', 'tmp/uid2', 'tmp/v2']);
    assert.deepEqual(
      await Promise.all(['uid1', 'pwd1', 'v1', 'tmp/uid2', 'tmp/groups2', 'tmp/pwd2', 'tmp/v2'].map((name) => readFile(path.join(rootfs, name), 'utf8'))),
      ['0\n', '/tmp\n', 'first\n', '1000\n', '1000\n', '/home/app\n', 'unset\n'],
    );
    // A user with supplementary groups (app is in staff and audio) gets them from a container of its own.
    const grouped = await runStepEntries(shell(3, 'id -G > /tmp/groups3', { user: 'app' }), run, ctx);
    assert.deepEqual(paths(grouped), ['tmp', 'tmp/groups3']);
    assert.equal(await readFile(path.join(rootfs, 'tmp/groups3'), 'utf8'), '1000 29 50\n');
    assert.equal(await containersStarted(), 2);
    const mounted = await runStepEntries(shell(4, 'echo in-tmpfs > /scratch/x; cat /scratch/x > /three', { mounts: [{ type: 'tmpfs', target: '/scratch' }] }), run, ctx);
    assert.deepEqual(paths(mounted), ['three']);
    assert.equal(await containersStarted(), 3, 'the --mount step had a container of its own');
    const fourth = await runStepEntries(shell(5, 'cat /three > /four'), run, ctx);
    assert.deepEqual(paths(fourth), ['four']);
    assert.equal(await containersStarted(), 4, 'the shared container was stopped for the --mount step and a new one started after it');
    await run.endSession();
    assert.deepEqual((await readdir(rootfs)).sort(), ['bin', 'etc', 'four', 'home', 'linuxrc', 'one', 'pwd1', 'sbin', 'three', 'tmp', 'uid1', 'usr', 'v1']);
  });

  test('what a step leaves running is killed before the next step, and never reaches a snapshot', async () => {
    const started = await containersStarted();
    const first = await runStepEntries(shell(6, '(sleep 1; echo late > /late) & sleep 31341 & echo started > /started'), run, ctx);
    assert.deepEqual(paths(first), ['started']);
    const second = await runStepEntries(shell(7, 'sleep 2; ls / > /listing; for p in /proc/[0-9]*; do cat $p/cmdline; echo; done > /processes'), run, ctx);
    assert.equal(await containersStarted(), started + 1);
    assert.deepEqual(paths(second), ['listing', 'processes']);
    assert.doesNotMatch(await readFile(path.join(rootfs, 'listing'), 'utf8'), /late/);
    const processes = (await readFile(path.join(rootfs, 'processes'), 'utf8')).split('\n');
    assert.deepEqual(processes.filter((cmdline) => cmdline.startsWith('sleep\0')), []);
    assert.equal(processes.filter((cmdline) => cmdline !== '').length, 2, 'the server and this step');
    await run.endSession();
  });

  test('a step that renices the server leaves the next step a new container, at the usual priority', async () => {
    const started = await containersStarted();
    await runStepEntries(shell(12, 'renice -n 9 -p 1'), run, ctx);
    assert.equal(run.session, undefined);
    await runStepEntries(shell(13, 'cut -d " " -f 19 /proc/self/stat > /tmp/nice'), run, ctx);
    assert.equal(await readFile(path.join(rootfs, 'tmp/nice'), 'utf8'), '0\n');
    assert.equal(await containersStarted(), started + 2);
    await run.endSession();
  });

  test('a failing step fails with the usual message and deletes the container', async () => {
    await assert.rejects(runStepEntries(shell(8, 'exit 3'), run, ctx), /^TsbuildError: process "\/bin\/sh -c exit 3" did not complete successfully: exit code: 3$/m);
    assert.equal(run.session, undefined);
    const scratchDirs = (await readdir(workspace.dir)).filter((name) => name.startsWith('run-scratch'));
    for (const name of scratchDirs) assert.deepEqual(await readdir(path.join(workspace.dir, name)), [], `${name} holds no container state`);
    assert.ok(!(await readdir(rootfs)).includes('proc'), 'the mount point stubs are gone');
  });

  test('when the shared sandbox cannot start, steps run one container each, with a note', async () => {
    // A runtime that refuses to pass descriptors: the server cannot start.
    const refusing = path.join(work, 'refusing-runtime');
    await writeFile(refusing, `#!/bin/sh\ncase "$*" in *--preserve-fds*) echo "no descriptors here" >&2; exit 1;; esac\necho "$*" >> ${runtimeLog}\nexec ${runtime!.path} "$@"\n`);
    await chmod(refusing, 0o755);
    const alone = { ...ctx, backend: new OciRuntimeBackend({ runtimePath: refusing }) };
    const started = await containersStarted();
    output.length = 0;
    assert.deepEqual(paths(await runStepEntries(shell(10, 'echo a > /tmp/a'), run, alone)), ['tmp', 'tmp/a']);
    assert.deepEqual(paths(await runStepEntries(shell(11, 'echo b > /tmp/b'), run, alone)), ['tmp', 'tmp/b']);
    assert.equal(await containersStarted(), started + 2);
    assert.deepEqual(output.filter((text) => text.startsWith('note:')).length, 1);
    assert.match(output.join(''), /^note: RUN steps get a sandbox each: the shared one did not start: the OCI runtime's step sandbox stopped \(exit code 1\): .*no descriptors here/m);
  });

  test('a step timeout kills the step and its container', async () => {
    const timed = { ...ctx, timeoutSeconds: 1 };
    await assert.rejects(runStepEntries(shell(9, 'trap "" TERM; sleep 31342'), run, timed), /^TsbuildError: RUN did not finish within 1 s and was killed$/m);
    assert.equal(run.session, undefined);
  });
});
