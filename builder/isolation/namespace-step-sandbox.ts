import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Duplex, Readable, Writable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import type { RunResult, SandboxSpec, SandboxStep, StepSandbox } from './backend.js';
import { findHostTool, systemBinDirs } from '../host/host-tools.js';
import { controlFd, errorMessage, networkReady, networkRequest, startedMessage } from './launcher/config.js';
import { startSlirp4netns, type NetworkHelper } from './launcher/slirp4netns.js';
import { checkUser, launcherConfig, launcherNetwork, launcherPath, setupFailure, type NamespaceSandbox } from './namespace-sandbox.js';
import { StepServerClient } from './step-server-client.js';
import { nodeCommand } from '../host/this-node.js';

/**
 * Starts our launcher as it starts for one step (see namespace-sandbox.ts), but told to serve steps:
 * once the namespaces, mounts, root, capabilities, no_new_privs and seccomp filter are in place,
 * it runs the step server (step-server.cts) instead of exec'ing a command, so each step it spawns
 * gets the confinement a launcher of its own would give it. An aborted step is killed at once
 * with the whole sandbox, as a launcher of its own would be.
 */
export async function openNamespaceSandbox(spec: SandboxSpec, sandbox: NamespaceSandbox): Promise<StepSandbox> {
  const [unshare, setpriv] = ['unshare', 'setpriv'].map(findHostTool);
  if (unshare === undefined || setpriv === undefined) throw new TsbuildError('ISOLATION', `${sandbox.name} isolation needs unshare and setpriv (util-linux) on the host`);
  // A note about the network goes to the first step's stderr.
  const notes: Buffer[] = [];
  const { network, slirp4netns } = await launcherNetwork({ network: spec.network, stderr: (chunk) => notes.push(chunk) });
  const server = { args: [], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, stdout: () => {}, stderr: () => {} };
  const config = { ...(await launcherConfig({ ...spec, ...server }, sandbox, network)), serve: true };
  const namespaces = ['--mount', '--propagation', 'private', '--uts', '--ipc', '--pid', ...(network === 'host' ? [] : ['--net']), '--fork', '--kill-child'];
  const args = ['--pdeathsig', 'KILL', '--', unshare, ...namespaces, '--', ...nodeCommand(), launcherPath];
  // fd 0 and 1 carry the server's frames, fd 2 the tools' diagnostics, fd 4 is the control socket.
  const child = spawn(setpriv, args, { stdio: ['pipe', 'pipe', 'pipe', 'ignore', 'pipe'], env: { PATH: systemBinDirs.join(':') } });
  let helper: NetworkHelper | undefined;
  let helperFailure: unknown;
  let failure: string | undefined;
  const control = child.stdio[controlFd] as Duplex;
  let received = '';
  control.setEncoding('utf8').on('data', (text: string) => {
    received += text;
    for (let newline = received.indexOf('\n'); newline >= 0; newline = received.indexOf('\n')) {
      const [kind = '', ...rest] = received.slice(0, newline).split(' ');
      received = received.slice(newline + 1);
      if (kind === networkRequest) {
        startSlirp4netns(slirp4netns as string, Number(rest[0])).then(
          (started) => {
            helper = started;
            if (child.exitCode !== null || child.signalCode !== null) helper.stop();
            else control.write(`${networkReady}\n`);
          },
          (error: unknown) => {
            helperFailure = error;
            child.kill('SIGKILL');
          },
        );
      } else if (kind === errorMessage) failure = rest.join(' ');
      else if (kind !== startedMessage) failure = `unexpected message from the launcher: ${kind}`;
    }
  });
  control.on('error', () => {});
  control.write(`${JSON.stringify(config)}\n`);
  const client = new StepServerClient(child as unknown as ChildProcessByStdio<Writable, Readable, Readable>, {
    killGraceMs: 0,
    kill: async () => void child.kill('SIGKILL'),
    failure: async (exit, diagnostics) => {
      if (failure !== undefined) return setupFailure(sandbox, { reason: failure });
      if (helperFailure instanceof TsbuildError) return helperFailure;
      return setupFailure(sandbox, { diagnostics, code: exit.code, signal: exit.signal });
    },
    ids: (user) => {
      checkUser(user, sandbox);
      return sandbox.ids.canSwitchIds ? { uid: user.uid, gid: user.gid } : {};
    },
    // As the launcher's exec reports it, like a shell.
    startFailed: (step, error) => {
      const name = step.args[0] ?? '';
      const missing = error.code === 'ENOENT';
      step.stderr(Buffer.from(missing ? `${name}: command not found\n` : `${name}: cannot execute (${error.code})\n`));
      return { exitCode: missing ? 127 : 126 };
    },
  }, (error) => new TsbuildError('ISOLATION', `cannot start ${setpriv}: ${error.message}`, { cause: error }));
  void client.exited.then(() => helper?.stop(), () => helper?.stop());
  try {
    await client.ready();
  } catch (error) {
    await client.shutdown();
    throw error;
  }
  return {
    get spent() {
      return client.spent;
    },
    run: (step: SandboxStep): Promise<RunResult> => {
      for (const note of notes.splice(0)) step.stderr(note);
      return client.run(step);
    },
    close: () => client.shutdown(),
  };
}
