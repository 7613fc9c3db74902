import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, realpath } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Duplex, Readable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import { secureJoin } from '../../layers/secure-join.js';
import type { RunResult, RunSpec, RunUser } from './backend.js';
import { findHostTool, systemBinDirs } from '../host/host-tools.js';
import {
  controlFd, errorMessage, networkReady, networkRequest, startedMessage, stepStderrFd, type LauncherConfig, type LauncherNetwork,
} from './launcher/config.js';
import { startSlirp4netns, type NetworkHelper } from './launcher/slirp4netns.js';
import { checkRunSpec } from './run-spec-check.js';
import { nodeCommand } from '../host/this-node.js';

/** What the current user namespace lets a RUN process be. */
export interface NamespaceIds {
  /** Whether the process may set supplementary groups and any uid/gid (false in a single-id namespace). */
  readonly canSwitchIds: boolean;
  /** Whether gid 5 (`tty`, devpts's default owner) is mapped. */
  readonly ttyGidMapped: boolean;
}

/** One namespace backend: its name (for messages) and the ids it may use. */
export interface NamespaceSandbox {
  readonly name: string;
  readonly ids: NamespaceIds;
}

export const launcherPath = fileURLToPath(new URL('./launcher/launcher-main.js', import.meta.url));


/** True when this process is uid 0 (of any user namespace) and the host has util-linux unshare and setpriv. */
export async function namespaceSandboxAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const tools = ['unshare', 'setpriv'].map(findHostTool);
  return tools.every((path) => path !== undefined);
}

function validate(spec: RunSpec, sandbox: NamespaceSandbox): void {
  checkRunSpec(spec);
  checkUser(spec.user, sandbox);
}

/** Refuses a user other than root where the namespace maps no other id. */
export function checkUser(user: RunUser, sandbox: NamespaceSandbox): void {
  if (!sandbox.ids.canSwitchIds && (user.uid !== 0 || user.gid !== 0)) {
    throw new TsbuildError(
      'ISOLATION',
      `cannot run as user ${user.uid}:${user.gid}: only root is mapped in this user namespace (add subordinate ids to /etc/subuid and /etc/subgid)`,
    );
  }
}

/**
 * The launcher's own reason when it gave one; otherwise the tools' diagnostics and how they ended.
 * (After a launcher failure its exit status says nothing: the network helper may have killed it.)
 */
export function setupFailure(sandbox: NamespaceSandbox, reported: { reason: string } | { diagnostics: string; code: number | null; signal: NodeJS.Signals | null }): TsbuildError {
  const detail = 'reason' in reported ? reported.reason : reported.diagnostics;
  const oneLine = detail.trim().split('\n').filter((line) => line.trim() !== '').join('; ');
  const status = 'reason' in reported ? '' : reported.signal !== null ? ` (signal ${reported.signal})` : ` (exit code ${reported.code})`;
  return new TsbuildError('ISOLATION', `${sandbox.name} isolation could not start the process${status}${oneLine === '' ? '' : `: ${oneLine}`}`);
}

/**
 * The step's exit status from unshare's. unshare re-raises the signal that killed its child, but
 * util-linux 2.38 cannot for SIGKILL: it reports that it could not reset the signal and exits 1.
 */
function exitStatus(code: number | null, signal: NodeJS.Signals | null, diagnostics: string): number {
  if (signal !== null) return 128 + osConstants.signals[signal];
  if (code === 1 && /^unshare: sigprocmask unblock failed/m.test(diagnostics)) return 128 + osConstants.signals.SIGKILL;
  return code ?? 1;
}

let loopbackOnlyNoted = false;

/** Whether this process may open the tun device slirp4netns needs (often 0600 root-only in containers). */
async function tunUsable(): Promise<boolean> {
  try {
    await access('/dev/net/tun', fsConstants.R_OK | fsConstants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * How the step's network namespace is made: `host` shares tsbuild's; `none` has loopback only;
 * `default` is connected by slirp4netns, or has loopback only (noted once) where slirp4netns or
 * the tun device is not available.
 */
export async function launcherNetwork(spec: Pick<RunSpec, 'network' | 'stderr'>): Promise<{ network: LauncherNetwork; slirp4netns?: string }> {
  if (spec.network === 'host') return { network: 'host' };
  if (spec.network === 'none') return { network: 'loopback' };
  const slirp4netns = findHostTool('slirp4netns');
  if (slirp4netns !== undefined && (await tunUsable())) return { network: 'slirp4netns', slirp4netns };
  if (!loopbackOnlyNoted) {
    loopbackOnlyNoted = true;
    const missing = slirp4netns === undefined ? 'slirp4netns is not installed' : 'slirp4netns cannot open /dev/net/tun';
    spec.stderr(Buffer.from(`note: ${missing}: RUN steps have a loopback-only network (RUN --network=host shares the host network)\n`));
  }
  return { network: 'loopback' };
}

export async function launcherConfig(spec: RunSpec, sandbox: NamespaceSandbox, network: LauncherNetwork): Promise<LauncherConfig> {
  const rootfs = await realpath(spec.rootfs);
  return {
    rootfs,
    proc: await secureJoin(rootfs, '/proc'),
    dev: await secureJoin(rootfs, '/dev'),
    sys: await secureJoin(rootfs, '/sys'),
    binds: await Promise.all(spec.binds.map(async (bind) => ({ source: bind.source, target: await secureJoin(rootfs, bind.destination), readonly: bind.readonly }))),
    args: spec.args,
    env: spec.env,
    cwd: spec.cwd,
    uid: spec.user.uid,
    gid: spec.user.gid,
    additionalGids: spec.user.additionalGids,
    switchIds: sandbox.ids.canSwitchIds,
    ptsGid: sandbox.ids.ttyGidMapped ? 5 : undefined,
    hostname: spec.hostname,
    network,
  };
}

/**
 * Runs `spec` through our launcher (launcher/launcher-main.ts) as PID 1 of new mount, pid, uts,
 * ipc and (unless the host network is asked for) net namespaces made by util-linux `unshare`.
 * setpriv gives unshare a parent death signal and `--kill-child` passes it on, so when tsbuild
 * dies, unshare, the launcher or the command, and with it the whole pid namespace, die too. The
 * config (command, environment, secrets) travels over a socket, never in argv.
 */
export async function runInNamespaces(spec: RunSpec, sandbox: NamespaceSandbox): Promise<RunResult> {
  spec.signal?.throwIfAborted();
  validate(spec, sandbox);
  const [unshare, setpriv] = ['unshare', 'setpriv'].map(findHostTool);
  if (unshare === undefined || setpriv === undefined) throw new TsbuildError('ISOLATION', `${sandbox.name} isolation needs unshare and setpriv (util-linux) on the host`);
  const { network, slirp4netns } = await launcherNetwork(spec);
  const config = await launcherConfig(spec, sandbox, network);
  spec.signal?.throwIfAborted();
  const namespaces = ['--mount', '--propagation', 'private', '--uts', '--ipc', '--pid', ...(network === 'host' ? [] : ['--net']), '--fork', '--kill-child'];
  const args = ['--pdeathsig', 'KILL', '--', unshare, ...namespaces, '--', ...nodeCommand(), launcherPath];
  return new Promise<RunResult>((resolve, reject) => {
    // fd 2 carries the tools' own diagnostics, fd 3 the process's stderr, fd 4 is the control socket
    const child = spawn(setpriv, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: { PATH: systemBinDirs.join(':') } });
    const control = child.stdio[controlFd] as Duplex;
    let diagnostics = '';
    let failure: string | undefined;
    let started = false;
    let aborted = false;
    let closed = false;
    let helperFailure: unknown;
    let helper: NetworkHelper | undefined;
    const onAbort = (): void => {
      aborted = true;
      child.kill('SIGKILL');
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => spec.stdout(chunk));
    (child.stdio[stepStderrFd] as Readable).on('data', (chunk: Buffer) => spec.stderr(chunk));
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      diagnostics += text;
    });
    const connectNetwork = (pid: number): void => {
      startSlirp4netns(slirp4netns as string, pid).then(
        (started) => {
          helper = started;
          if (closed) helper.stop();
          else control.write(`${networkReady}\n`);
        },
        (error: unknown) => {
          helperFailure = error;
          child.kill('SIGKILL');
        },
      );
    };
    let received = '';
    control.setEncoding('utf8').on('data', (text: string) => {
      received += text;
      for (let newline = received.indexOf('\n'); newline >= 0; newline = received.indexOf('\n')) {
        const line = received.slice(0, newline);
        received = received.slice(newline + 1);
        const [kind = '', ...rest] = line.split(' ');
        if (kind === networkRequest) connectNetwork(Number(rest[0]));
        else if (kind === startedMessage) started = true;
        else if (kind === errorMessage) failure = rest.join(' ');
      }
    });
    control.on('error', () => {});
    control.write(`${JSON.stringify(config)}\n`);
    child.on('error', (error) => {
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new TsbuildError('ISOLATION', `cannot start ${setpriv}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      closed = true;
      spec.signal?.removeEventListener('abort', onAbort);
      helper?.stop();
      // a launcher that failed takes its network namespace with it, so slirp4netns fails too:
      // the launcher's reason comes first
      if (aborted) reject(spec.signal?.reason);
      else if (failure !== undefined) reject(setupFailure(sandbox, { reason: failure }));
      else if (helperFailure !== undefined) reject(helperFailure);
      else if (!started) reject(setupFailure(sandbox, { diagnostics, code, signal }));
      else resolve({ exitCode: exitStatus(code, signal, diagnostics) });
    });
  });
}
