import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../../layers/errors.js';
import { lstatOrUndefined, removeIfExists } from '../../layers/fs-util.js';
import { libc } from '../../layers/native/libc.js';
import { processStartTime } from '../host/process-start.js';
import { mountPrivateTmpfs, unmountPrivateTmpfs } from '../host/tmpfs.js';
import type { RunResult, SandboxSpec, SandboxStep, StepSandbox } from './backend.js';
import { mappedLibraries, nodeThroughDescriptors } from './node-runtime.js';
import { ociConfig, type OciUserNamespace } from './oci-config.js';
import {
  checkIdsMapped, runtimeBinds, runtimeCommand, runtimeEnv, runtimeErrors, scratchBytes, writeContainerFiles, type ContainerFiles,
} from './oci-runtime-tools.js';
import { StepServerClient } from './step-server-client.js';

const serverScript = fileURLToPath(new URL('./step-server.cjs', import.meta.url));
const serverPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface OciSandboxOptions {
  readonly runtimePath: string;
  readonly killGraceMs: number;
  readonly settings: { readonly userNamespace: OciUserNamespace | undefined; readonly nofile: number };
}

/**
 * Starts one OCI container for a stage's steps of one shape: its process is the step server
 * (step-server.cts), this node binary run through descriptors to its own directories, which the
 * server closes before any step starts, so nothing of it is in the rootfs. The config is a RUN
 * step's (capabilities, seccomp, masked paths, namespaces), so every step the server starts has
 * the confinement of a container of its own; the server resets the container after each step.
 */
export async function openOciSandbox(spec: SandboxSpec, options: OciSandboxOptions): Promise<StepSandbox> {
  await mountPrivateTmpfs(spec.scratchDir, scratchBytes);
  const sandbox = new OciStepSandbox(spec, options);
  try {
    await sandbox.start();
  } catch (error) {
    await sandbox.close();
    throw error;
  }
  return sandbox;
}

class OciStepSandbox implements StepSandbox {
  private container: ContainerFiles | undefined;
  private server: StepServerClient | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly spec: SandboxSpec, private readonly options: OciSandboxOptions) {}

  async start(): Promise<void> {
    const { userNamespace, nofile } = this.options.settings;
    // koffi's addon must be mapped to be found: the server loads it to make itself non-dumpable.
    libc();
    const koffiAddon = mappedKoffi();
    const launch = nodeThroughDescriptors([serverScript, koffiAddon], (paths) => ['--preserve-symlinks-main', paths[0]!, paths[1]!]);
    const args = [...launch.args, String(launch.directories.length)];
    const server = { args, env: [serverPath], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] } };
    const config = ociConfig({ ...this.spec, ...server, rootfs: resolvePath(this.spec.rootfs), binds: await runtimeBinds(this.spec.binds, userNamespace) }, nofile, userNamespace);
    const container = (this.container = await writeContainerFiles(this.spec.scratchDir, this.options.runtimePath, config));
    const { id, globalArgs } = container;
    const fds = launch.directories.map((dir) => openSync(dir, 'r'));
    let child;
    try {
      child = spawn(this.options.runtimePath, [...globalArgs, 'run', '--preserve-fds', String(fds.length), '--bundle', container.bundle, id], {
        stdio: ['pipe', 'pipe', 'pipe', ...fds],
        env: runtimeEnv(),
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const runtimePath = this.options.runtimePath;
    this.server = new StepServerClient(child as ChildProcessByStdio<Writable, Readable, Readable>, {
      killGraceMs: this.options.killGraceMs,
      kill: async () => void (await runtimeCommand(runtimePath, [...globalArgs, 'kill', id, '9'])),
      failure: async (exit, diagnostics) => {
        const status = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
        const detail = [...(await runtimeErrors(container.logFile)), ...diagnostics.trim().split('\n').filter((line) => line.trim() !== '')];
        return new TsbuildError('ISOLATION', `the OCI runtime's step sandbox stopped (${status})${detail.length > 0 ? `: ${detail.join('; ')}` : ''}`);
      },
      ids: (user) => {
        if (userNamespace) checkIdsMapped(user, userNamespace);
        return { uid: user.uid, gid: user.gid };
      },
      startFailed: (step, error) => {
        throw new TsbuildError('ISOLATION', `the OCI runtime could not run the process: ${startFailure(step.args[0] ?? '', error)}`);
      },
    }, (error) => new TsbuildError('ISOLATION', `cannot start ${runtimePath}: ${error.message}`, { cause: error }));
    await this.server.ready();
  }

  get spent(): boolean {
    return this.server?.spent ?? false;
  }

  run(step: SandboxStep): Promise<RunResult> {
    if (!this.server || this.closing) throw new TsbuildError('INTERNAL', 'the step sandbox is closed');
    return this.server.run(step);
  }

  close(): Promise<void> {
    return (this.closing ??= this.stop());
  }

  /** Stops the server, then deletes the container and unmounts the scratch directory. */
  private async stop(): Promise<void> {
    try {
      if (this.container && this.server) killServer(this.container);
      await this.server?.shutdown();
      const container = this.container;
      if (container === undefined) return;
      const { id, globalArgs } = container;
      const left = this.server === undefined || (await lstatOrUndefined(join(container.stateDir, id))) !== undefined;
      if (left) {
        const deleted = await runtimeCommand(this.options.runtimePath, [...globalArgs, 'delete', '--force', id]);
        const stillThere = deleted.code !== 0 && (await runtimeCommand(this.options.runtimePath, [...globalArgs, 'state', id])).code === 0;
        if (stillThere) throw new TsbuildError('ISOLATION', `${this.options.runtimePath} could not delete container ${id}: ${deleted.stderr.trim()}`);
      }
      await removeIfExists(container.record);
    } finally {
      await unmountPrivateTmpfs(this.spec.scratchDir);
    }
  }
}

/**
 * Kills the step server, the container's first process, at once: between steps it has reset the
 * container already, and its own exit, Node's tear-down, takes milliseconds, while with it gone
 * the kernel ends whatever is left in the container. Found through the runtime's state (runc's
 * state.json) and killed only while the process there is the one the runtime started (its start
 * time, as the runtime checks it); otherwise, or with another runtime, the server is left to end
 * as its input closes.
 */
function killServer(container: ContainerFiles): void {
  let state: { init_process_pid?: unknown; init_process_start?: unknown };
  try {
    state = JSON.parse(readFileSync(join(container.stateDir, container.id, 'state.json'), 'utf8')) as typeof state;
  } catch {
    return;
  }
  const pid = state.init_process_pid;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 1 || typeof state.init_process_start !== 'number') return;
  if (processStartTime(pid) !== String(state.init_process_start)) return;
  try {
    process.kill(pid, osConstants.signals.SIGKILL);
  } catch {
    // Gone already, or not ours to signal: it ends as its input closes.
  }
}

/** Where koffi's native addon was loaded from. */
function mappedKoffi(): string {
  const file = mappedLibraries(readFileSync('/proc/self/maps', 'utf8')).find((name) => name.endsWith('/koffi.node'));
  if (file === undefined) throw new TsbuildError('ISOLATION', 'cannot find the loaded koffi addon for the step sandbox');
  return file;
}

/** A failed start as runc words it: the executable missing from PATH, or the system error. */
function startFailure(file: string, error: { code: string; syscall: string }): string {
  if (error.code === 'ENOENT' && !file.includes('/')) return `exec: ${JSON.stringify(file)}: executable file not found in $PATH`;
  const reason = error.code === 'ENOENT' ? 'no such file or directory' : error.code === 'EACCES' ? 'permission denied' : error.code;
  return `exec: ${JSON.stringify(file)}: ${reason}`;
}
