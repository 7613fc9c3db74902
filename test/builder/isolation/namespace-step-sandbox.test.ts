import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IsolationBackend, StepSandbox } from '../../../builder/isolation/backend.js';
import { ChrootBackend, chrootAvailable } from '../../../builder/isolation/chroot.js';
import { RootlessBackend } from '../../../builder/isolation/rootless.js';
import { TsbuildError } from '../../../layers/errors.js';
import { createBusyboxRootfs, createMountPoints } from '../../support/busybox-rootfs.js';
import { requires } from '../../support/requirement.js';
import { runShellStep } from '../../support/sandbox-step.js';

/** Each process in a pid namespace other than ours: its namespace and its command line. */
async function otherNamespaceProcesses(): Promise<{ namespace: string; commandLine: string }[]> {
  const ours = await readlink('/proc/self/ns/pid');
  const found: { namespace: string; commandLine: string }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const namespace = await readlink(`/proc/${name}/ns/pid`).catch(() => ours);
    if (namespace !== ours) found.push({ namespace, commandLine: (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter((arg) => arg !== '').join(' ') });
  }
  return found;
}

/** The command lines of the processes in pid namespaces other than ours. */
async function otherNamespaceCommandLines(): Promise<string[]> {
  return (await otherNamespaceProcesses()).map((process) => process.commandLine);
}

const backends: readonly [string, () => IsolationBackend][] = [['chroot', () => new ChrootBackend()], ['rootless', () => new RootlessBackend()]];

for (const [name, makeBackend] of backends) {
  // As root (as CI runs) missing tools are a failure; only an unprivileged run skips, saying why.
  describe(`${name} step sandbox`, { skip: requires(process.getuid?.() === 0 ? false : 'needs root') }, () => {
    let dir: string;
    let rootfs: string;

    before(async () => {
      assert.ok(await chrootAvailable(), 'unshare and setpriv (util-linux) are needed');
      dir = await realpath(await mkdtemp(join(tmpdir(), `${name}-step-sandbox-test-`)));
      rootfs = join(dir, 'rootfs');
      await createBusyboxRootfs(rootfs);
      await createMountPoints(rootfs);
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    function open(): Promise<StepSandbox> {
      const backend = makeBackend();
      return backend.openSandbox!({ rootfs, hostname: 'buildhost', network: 'none', binds: [], scratchDir: dir });
    }


    it('runs steps in one pid namespace, each with its own ids, environment and directory, nothing left between them', async () => {
      const sandbox = await open();
      try {
        const first = await runShellStep(sandbox, 'readlink /proc/self/ns/pid; id -u; id -g; pwd; echo "$A"; sleep 31350 & echo x > /dev/shm/left', { env: ['PATH=/bin', 'A=one'], cwd: '/tmp', user: { uid: 1000, gid: 1001, additionalGids: [] } });
        const second = await runShellStep(sandbox, 'readlink /proc/self/ns/pid; id -u; id -g; pwd; echo "${A-unset}"; ls /dev/shm; for p in /proc/[0-9]*; do cat $p/cmdline; echo; done | grep -c "^sleep"');
        const [firstNamespace, ...firstRest] = first.stdout.trim().split('\n');
        const [secondNamespace, ...secondRest] = second.stdout.trim().split('\n');
        assert.equal(firstNamespace, secondNamespace);
        assert.deepEqual(firstRest, ['1000', '1001', '/tmp', 'one']);
        assert.deepEqual(secondRest, ['0', '0', '/', 'unset', '0']);
        assert.deepEqual((await otherNamespaceCommandLines()).filter((line) => line.includes('31350')), []);
      } finally {
        await sandbox.close();
      }
    });

    it('keeps the server out of reach, reports a missing command as a shell would, and is spent by a renice of it', async () => {
      const sandbox = await open();
      try {
        const probe = await runShellStep(sandbox, 'readlink /proc/1/exe || echo no-exe; readlink /proc/1/fd/0 || echo no-fd; kill -USR1 1; kill -TERM 1; grep SigIgn /proc/1/status');
        assert.match(probe.stdout, /^no-exe\nno-fd\nSigIgn:\s*([0-9a-f]+)\n$/);
        const ignored = BigInt(`0x${/SigIgn:\s*([0-9a-f]+)/.exec(probe.stdout)![1]}`);
        assert.equal(ignored & (1n << 9n), 1n << 9n, 'SIGUSR1 (Node\'s inspector) is ignored');
        const missing = await runShellStep(sandbox, '', { args: ['no-such-command'] });
        assert.deepEqual(missing, { exitCode: 127, stdout: '', stderr: 'no-such-command: command not found\n' });
        await runShellStep(sandbox, 'renice -n 5 -p 1');
        assert.equal(sandbox.spent, true);
      } finally {
        await sandbox.close();
      }
    });

    it('an abort kills the step and the sandbox at once', async () => {
      const sandbox = await open();
      const abort = new AbortController();
      const reason = new TsbuildError('INTERRUPTED', 'build interrupted');
      const running = runShellStep(sandbox, 'trap "" TERM; sleep 31351', { signal: abort.signal });
      let step: { namespace: string } | undefined;
      while (!(step = (await otherNamespaceProcesses()).find((process) => process.commandLine === 'sleep 31351'))) await new Promise((resolve) => setTimeout(resolve, 20));
      abort.abort(reason);
      await assert.rejects(running, (error) => error === reason);
      await sandbox.close();
      // The launcher dies of its parent-death signal once unshare is killed: soon, not necessarily by the time close() returns.
      // Only this sandbox's namespace counts: other test files run sandboxes of their own meanwhile.
      const left = async (): Promise<string[]> => (await otherNamespaceProcesses()).filter((process) => process.namespace === step!.namespace).map((process) => process.commandLine);
      for (let tries = 0; tries < 100 && (await left()).length > 0; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(await left(), []);
    });
  });
}
