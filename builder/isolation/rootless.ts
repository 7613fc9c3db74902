import { spawn } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { isAbsolute } from 'node:path';
import type { Readable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import { findExecutable, systemBinDirs } from './host-tools.js';
import type { IsolationBackend, RunResult, RunSpec } from './backend.js';
import { secureJoin } from '../../layers/secure-join.js';
import { rootlessCommand, rootlessSetupDoneMarker, type RootlessIds, type RootlessTools, type RootlessTargets } from './rootless-setup.js';
import { idMapped } from './userns.js';

/** Tools the setup script calls by name (`ip` only for `network: 'none'`). */
const setupTools = ['mount', 'mkdir', 'ln', 'hostname'];

const findHostTool = (name: string): Promise<string | undefined> => findExecutable(name, systemBinDirs);

async function findTools(): Promise<RootlessTools | undefined> {
  const [unshare, chroot, env, sh] = await Promise.all(['unshare', 'chroot', 'env', 'sh'].map(findHostTool));
  if (unshare === undefined || chroot === undefined || env === undefined || sh === undefined) return undefined;
  return { unshare, chroot, env, sh };
}

/**
 * True when this process is uid 0, in a user namespace or the initial one, and the host has the
 * util-linux and coreutils tools the backend runs.
 */
export async function rootlessAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const setup = await Promise.all(setupTools.map(findHostTool));
  return (await findTools()) !== undefined && setup.every((path) => path !== undefined);
}

/** What this process's user namespace lets a RUN process be. */
async function namespaceIds(): Promise<RootlessIds> {
  const [uidMap, gidMap, setgroups] = await Promise.all(
    ['uid_map', 'gid_map', 'setgroups'].map((name) => readFile(`/proc/self/${name}`, 'utf8').catch(() => '')),
  );
  const singleId = !idMapped(uidMap, 1) || !idMapped(gidMap, 1) || setgroups.trim() === 'deny';
  return { canSwitchIds: !singleId, ttyGidMapped: idMapped(gidMap, 5) };
}

function validate(spec: RunSpec, ids: RootlessIds): void {
  if (spec.args.length === 0) throw new TsbuildError('ISOLATION', 'nothing to run: the command is empty');
  const bad = spec.env.find((entry) => !/^[^=]+=/.test(entry));
  if (bad !== undefined) throw new TsbuildError('ISOLATION', `environment entry ${JSON.stringify(bad)} is not KEY=value`);
  for (const path of [spec.cwd, ...spec.binds.map((bind) => bind.destination)]) {
    if (!isAbsolute(path)) throw new TsbuildError('ISOLATION', `container path ${path} is not absolute`);
  }
  for (const id of [spec.user.uid, spec.user.gid, ...spec.user.additionalGids]) {
    if (!Number.isInteger(id) || id < 0) throw new TsbuildError('ISOLATION', `invalid user or group id ${id}`);
  }
  if (!ids.canSwitchIds && (spec.user.uid !== 0 || spec.user.gid !== 0)) {
    throw new TsbuildError(
      'ISOLATION',
      `cannot run as user ${spec.user.uid}:${spec.user.gid}: only root is mapped in this user namespace (add subordinate ids to /etc/subuid and /etc/subgid)`,
    );
  }
}

function setupFailure(control: string, code: number | null, signal: NodeJS.Signals | null): TsbuildError {
  const detail = control.trim().split('\n').filter((line) => line.trim() !== '').join('; ');
  const status = signal !== null ? `signal ${signal}` : `exit code ${code}`;
  return new TsbuildError('ISOLATION', `rootless isolation could not start the process (${status})${detail === '' ? '' : `: ${detail}`}`);
}

/**
 * Runs as uid 0 of a user namespace (what `tsbuild build` enters for an unprivileged user), or as
 * real root: util-linux `unshare` makes new mount, pid, uts, ipc (and for `network: 'none'` net)
 * namespaces owned by the current user namespace; a host shell mounts proc, a tmpfs `/dev` with the
 * host's device nodes bound in, the host's `/sys` read-only and the binds, then enters the rootfs
 * with host tools (see rootless-setup.ts). In a single-id namespace every process runs as root.
 */
export class RootlessBackend implements IsolationBackend {
  readonly name = 'rootless' as const;

  async run(spec: RunSpec): Promise<RunResult> {
    spec.signal?.throwIfAborted();
    const ids = await namespaceIds();
    validate(spec, ids);
    const tools = await findTools();
    if (tools === undefined) throw new TsbuildError('ISOLATION', 'rootless isolation needs unshare, chroot, env and sh on the host');
    const rootfs = await realpath(spec.rootfs);
    const targets: RootlessTargets = {
      rootfs,
      proc: await secureJoin(rootfs, '/proc'),
      dev: await secureJoin(rootfs, '/dev'),
      sys: await secureJoin(rootfs, '/sys'),
      binds: await Promise.all(spec.binds.map((bind) => secureJoin(rootfs, bind.destination))),
    };
    spec.signal?.throwIfAborted();
    const [command, ...args] = rootlessCommand(spec, tools, targets, ids);
    return new Promise<RunResult>((resolve, reject) => {
      // fd 2 is the setup's control channel, fd 3 the process's stderr.
      const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: systemBinDirs.join(':') } });
      let control = '';
      let aborted = false;
      // Killing unshare kills the pid namespace's init (`--kill-child`) and with it every process in it.
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
        else if (!control.includes(`${rootlessSetupDoneMarker}\n`)) reject(setupFailure(control, code, signal));
        else resolve({ exitCode: code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]) });
      });
    });
  }
}
