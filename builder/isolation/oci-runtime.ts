import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode, lstatOrUndefined, readdirIfExists, removeIfExists } from '../../layers/fs-util.js';
import { mountPrivateTmpfs, unmountPrivateTmpfs } from '../host/tmpfs.js';
import type { IsolationBackend, RunResult, RunSpec, SandboxSpec, StepSandbox } from './backend.js';
import { openOciSandbox } from './oci-sandbox.js';
import { ociConfig, type OciUserNamespace } from './oci-config.js';
import {
  checkIdsMapped, containerId, containerRecordName, containerSettings, runtimeBinds, runtimeCommand, runtimeEnv, runtimeErrors,
  scratchBytes, settlesWithin, writeContainerFiles, type CommandResult, type ContainerRecord, type Exit,
} from './oci-runtime-tools.js';

export interface OciRuntimeOptions {
  /** Path of the runc or crun binary. */
  readonly runtimePath: string;
  /** How long an aborted process has between SIGTERM and SIGKILL; 10 s by default, like `docker stop`. */
  readonly killGraceMs?: number;
}

/**
 * Runs each step as an OCI container with runc or crun: writes a bundle (see oci-config.ts) into
 * the scratch directory, keeps the runtime's state there too, and runs the container in the
 * foreground with `run`, so the runtime stays the process's parent and reports its exit status
 * (128+N for signal N) while piping its output: `run` is the runtime's create and start in one
 * call, and only the runtime's parent can learn the exit status. In a user namespace the container
 * gets a nested one mapping the same ids, and the runtime works rootless (it then skips cgroups).
 * An abort or timeout checks `state`, sends SIGTERM with `kill`, then SIGKILL after the grace
 * period; `delete --force` follows every run whose container is still there (failed, aborted, or
 * its state directory left behind) so no container, cgroup or mount remains. Until then a record in
 * the scratch directory lets the sweep of a dead build's workspace delete the container.
 * The scratch directory is a tmpfs where one can be mounted, unmounted after the run: the bundle's
 * config holds the step's environment, secrets included, the runtime's state a copy of it, and
 * neither may reach a disk.
 */
export class OciRuntimeBackend implements IsolationBackend {
  readonly name = 'oci' as const;
  private readonly runtimePath: string;
  private readonly killGraceMs: number;
  /** The container's user namespace and open-file limit: this process's credentials decide them, the same for every step. */
  private processSettings: Promise<{ userNamespace: OciUserNamespace | undefined; nofile: number }> | undefined;

  constructor(options: OciRuntimeOptions) {
    this.runtimePath = options.runtimePath;
    this.killGraceMs = options.killGraceMs ?? 10_000;
  }

  async openSandbox(spec: SandboxSpec): Promise<StepSandbox> {
    const settings = await (this.processSettings ??= containerSettings());
    return openOciSandbox(spec, { runtimePath: this.runtimePath, killGraceMs: this.killGraceMs, settings });
  }

  async run(spec: RunSpec): Promise<RunResult> {
    spec.signal?.throwIfAborted();
    await mountPrivateTmpfs(spec.scratchDir, scratchBytes);
    try {
      return await this.runInScratch(spec);
    } finally {
      await unmountPrivateTmpfs(spec.scratchDir);
    }
  }

  private async runInScratch(spec: RunSpec): Promise<RunResult> {
    const { userNamespace, nofile } = await (this.processSettings ??= containerSettings());
    if (userNamespace) checkIdsMapped(spec.user, userNamespace);
    const config = ociConfig({ ...spec, rootfs: resolvePath(spec.rootfs), binds: await runtimeBinds(spec.binds, userNamespace) }, nofile, userNamespace);
    const { id, bundle, stateDir, logFile, globalArgs, record } = await writeContainerFiles(spec.scratchDir, this.runtimePath, config);

    let outcome: { result: RunResult } | { error: unknown };
    try {
      outcome = { result: await this.runContainer(spec, globalArgs, id, bundle, logFile) };
    } catch (error) {
      outcome = { error };
    }
    // The runtime deletes the container when `run` returns, removing its state directory last; `delete`
    // covers aborts, failed starts and a runtime that left the container behind.
    const left = 'error' in outcome || (await lstatOrUndefined(join(stateDir, id))) !== undefined;
    const deleted = left ? await this.command([...globalArgs, 'delete', '--force', id]) : { code: 0, stderr: '' };
    if ('error' in outcome) throw outcome.error;
    if (deleted.code !== 0) throw new TsbuildError('ISOLATION', `${this.runtimePath} could not delete container ${id}: ${deleted.stderr.trim()}`);
    await removeIfExists(record);
    return outcome.result;
  }

  private async runContainer(spec: RunSpec, globalArgs: readonly string[], id: string, bundle: string, logFile: string): Promise<RunResult> {
    const child = spawn(this.runtimePath, [...globalArgs, 'run', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: runtimeEnv(),
    });
    child.stdout.on('data', (chunk: Buffer) => spec.stdout(chunk));
    child.stderr.on('data', (chunk: Buffer) => spec.stderr(chunk));
    const exited = new Promise<Exit>((resolve, reject) => {
      child.once('error', (error) => reject(new TsbuildError('ISOLATION', `cannot start ${this.runtimePath}: ${error.message}`, { cause: error })));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    let stopping: Promise<void> | undefined;
    const onAbort = (): void => {
      stopping = this.stop(globalArgs, id, exited);
      // Awaited once the runtime exits; until then a failure must not count as unhandled.
      stopping.catch(() => {});
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    // An abort while the bundle was being written came before the listener.
    if (spec.signal?.aborted) onAbort();
    let exit: Exit;
    try {
      exit = await exited;
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
      await stopping;
    }
    if (spec.signal?.aborted) throw spec.signal.reason;
    // A process that ran reports its status silently; the runtime logs errors only when it failed itself.
    const errors = await runtimeErrors(logFile);
    if (errors.length > 0 || exit.code === null) {
      const status = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
      const detail = errors.length > 0 ? `: ${errors.join('; ')}` : '';
      throw new TsbuildError('ISOLATION', `the OCI runtime could not run the process (${status})${detail}`);
    }
    return { exitCode: exit.code };
  }

  /**
   * SIGTERM, then SIGKILL once the grace period passes. The runtime's `state` tells when there is a
   * process to signal: none while the container is still being created, none once it has stopped.
   */
  private async stop(globalArgs: readonly string[], id: string, exited: Promise<Exit>): Promise<void> {
    // Signals by number: runc and crun both accept that form.
    const deliver = async (signal: string): Promise<boolean> => {
      for (;;) {
        const status = await this.status(globalArgs, id);
        if (status === 'stopped') return false;
        const signalled = status !== undefined && status !== 'creating' && (await this.command([...globalArgs, 'kill', id, signal])).code === 0;
        if (signalled) return true;
        if (await settlesWithin(exited, 50)) return false;
      }
    };
    if (!(await deliver('15'))) return;
    if (await settlesWithin(exited, this.killGraceMs)) return;
    await deliver('9');
  }

  /** The container's status from `state` (creating, created, running, paused, stopped), or undefined before it exists. */
  private async status(globalArgs: readonly string[], id: string): Promise<string | undefined> {
    const { code, stdout } = await this.command([...globalArgs, 'state', id]);
    if (code !== 0) return undefined;
    const state = JSON.parse(stdout) as { status?: unknown };
    return typeof state.status === 'string' ? state.status : undefined;
  }

  private command(args: readonly string[]): Promise<CommandResult> {
    return runtimeCommand(this.runtimePath, args);
  }
}

/**
 * Deletes, with `delete --force` (which kills what still runs), the containers recorded in the
 * step scratch directories directly inside `workspaceDir`: those a build that died left behind.
 * Throws ISOLATION when one cannot be deleted; a record whose container is already gone is dropped.
 */
export async function deleteLeftoverContainers(workspaceDir: string): Promise<void> {
  for (const name of await readdirIfExists(workspaceDir)) {
    const scratchDir = join(workspaceDir, name);
    const record = await readContainerRecord(join(scratchDir, containerRecordName));
    if (record === undefined) continue;
    const globalArgs = ['--root', join(scratchDir, 'state')];
    const deleted = await runtimeCommand(record.runtime, [...globalArgs, 'delete', '--force', record.id]);
    if (deleted.code !== 0 && (await runtimeCommand(record.runtime, [...globalArgs, 'state', record.id])).code === 0) {
      throw new TsbuildError('ISOLATION', `${record.runtime} could not delete leftover container ${record.id}: ${deleted.stderr.trim()}`);
    }
    await removeIfExists(join(scratchDir, containerRecordName));
  }
}

async function readContainerRecord(file: string): Promise<ContainerRecord | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return undefined;
    throw error;
  }
  let record: Partial<ContainerRecord>;
  try {
    record = JSON.parse(text) as Partial<ContainerRecord>;
  } catch {
    // Cut short by a crash while being written, which was before the container could be created.
    return undefined;
  }
  if (typeof record.runtime !== 'string' || typeof record.id !== 'string' || !containerId.test(record.id)) {
    throw new TsbuildError('ISOLATION', `${file} is not a container record`);
  }
  return { runtime: record.runtime, id: record.id };
}
