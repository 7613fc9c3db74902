import { spawn } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import { secureJoin } from '../../layers/secure-join.js';
import type { RunResult, RunSpec } from './backend.js';
import { findExecutable, systemBinDirs } from './host-tools.js';
import { sandboxCommand, setupDoneMarker, type HostTools, type MountTargets, type NamespaceSandbox, type SetupSteps } from './namespace-setup.js';
import { checkRunSpec } from './run-spec-check.js';

/** Tools every setup script calls by name (`ip` only for `network: 'none'`). */
const commonSetupTools = ['mount', 'mkdir', 'ln'];

/** Only the host's system directories are searched for tools; the setup script runs with this PATH. */
const findHostTool = (name: string): Promise<string | undefined> => findExecutable(name, systemBinDirs);

async function findHostTools(): Promise<HostTools | undefined> {
  const [unshare, chroot, env, sh] = await Promise.all(['unshare', 'chroot', 'env', 'sh'].map(findHostTool));
  if (unshare === undefined || chroot === undefined || env === undefined || sh === undefined) return undefined;
  return { unshare, chroot, env, sh };
}

/** True when this process is uid 0 (of any user namespace) and the host has every tool `steps` need. */
export async function namespaceSandboxAvailable(steps: SetupSteps): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const setup = await Promise.all([...commonSetupTools, ...steps.tools].map(findHostTool));
  return (await findHostTools()) !== undefined && setup.every((path) => path !== undefined);
}

function validate(spec: RunSpec, sandbox: NamespaceSandbox): void {
  checkRunSpec(spec);
  if (!sandbox.ids.canSwitchIds && (spec.user.uid !== 0 || spec.user.gid !== 0)) {
    throw new TsbuildError(
      'ISOLATION',
      `cannot run as user ${spec.user.uid}:${spec.user.gid}: only root is mapped in this user namespace (add subordinate ids to /etc/subuid and /etc/subgid)`,
    );
  }
}

/** One line from what the setup wrote to the control channel. */
function setupFailure(sandbox: NamespaceSandbox, control: string, code: number | null, signal: NodeJS.Signals | null): TsbuildError {
  const detail = control.trim().split('\n').filter((line) => line.trim() !== '').join('; ');
  const status = signal !== null ? `signal ${signal}` : `exit code ${code}`;
  return new TsbuildError('ISOLATION', `${sandbox.name} isolation could not start the process (${status})${detail === '' ? '' : `: ${detail}`}`);
}

/**
 * Runs `spec` with util-linux `unshare` in new mount, pid, uts, ipc (and for `network: 'none'` net)
 * namespaces: a host shell, as the pid namespace's init, mounts proc, dev, sys and the binds inside
 * the rootfs in the private mount namespace, then starts host tools that change root, ids and
 * directory and exec the command (see namespace-setup.ts).
 */
export async function runInNamespaces(spec: RunSpec, sandbox: NamespaceSandbox): Promise<RunResult> {
  spec.signal?.throwIfAborted();
  validate(spec, sandbox);
  const tools = await findHostTools();
  if (tools === undefined) throw new TsbuildError('ISOLATION', `${sandbox.name} isolation needs unshare, chroot, env and sh on the host`);
  const rootfs = await realpath(spec.rootfs);
  const targets: MountTargets = {
    rootfs,
    proc: await secureJoin(rootfs, '/proc'),
    dev: await secureJoin(rootfs, '/dev'),
    sys: await secureJoin(rootfs, '/sys'),
    binds: await Promise.all(spec.binds.map((bind) => secureJoin(rootfs, bind.destination))),
  };
  spec.signal?.throwIfAborted();
  const [command, ...args] = sandboxCommand(spec, tools, targets, sandbox);
  return new Promise<RunResult>((resolve, reject) => {
    // fd 2 is the setup's control channel, fd 3 the process's stderr.
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: systemBinDirs.join(':') } });
    let control = '';
    let aborted = false;
    // Killing unshare kills its child, the pid namespace's init (`--kill-child`), and with it
    // every process in the namespace.
    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGKILL');
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => spec.stdout(chunk));
    (child.stdio[3] as Readable).on('data', (chunk: Buffer) => spec.stderr(chunk));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      control += text;
    });
    child.on('error', (error) => {
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new TsbuildError('ISOLATION', `cannot start ${command}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      spec.signal?.removeEventListener('abort', onAbort);
      if (aborted) reject(spec.signal?.reason);
      else if (!control.includes(`${setupDoneMarker(sandbox)}\n`)) reject(setupFailure(sandbox, control, code, signal));
      else resolve({ exitCode: code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]) });
    });
  });
}
