import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../../layers/errors.js';
import { lstatOrUndefined, removeIfExists } from '../../layers/fs-util.js';
import { libc } from '../../layers/native/libc.js';
import { mountPrivateTmpfs, unmountPrivateTmpfs } from '../host/tmpfs.js';
import type { RunResult, SandboxSpec, SandboxStep, StepSandbox } from './backend.js';
import { nodeThroughDescriptors } from './node-runtime.js';
import { ociConfig, type OciBindMount, type OciUserNamespace } from './oci-config.js';
import {
  checkIdsMapped, containerRecordName, lockableFlagsAt, runtimeCommand, runtimeEnv, runtimeErrors, scratchBytes, settlesWithin,
  type ContainerRecord, type Exit,
} from './oci-runtime-tools.js';
import { encodeFrame, FrameReader, frameType, type StepExit, type StepRequest } from './step-server.cjs';

const serverScript = fileURLToPath(new URL('./step-server.cjs', import.meta.url));
const serverPath = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How long a stopping server has to reset and exit before its container is killed. */
const closeGraceMs = 5_000;

export interface OciSandboxOptions {
  readonly runtimePath: string;
  readonly killGraceMs: number;
  readonly settings: { readonly userNamespace: OciUserNamespace | undefined; readonly nofile: number };
}

/** The step in progress: where its output and exit go. */
interface CurrentStep {
  readonly request: SandboxStep;
  readonly settle: (exit: StepExit) => void;
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
  private readonly id = `tsbuild-${randomBytes(8).toString('hex')}`;
  private readonly stateDir: string;
  private readonly logFile: string;
  private readonly globalArgs: readonly string[];
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private current: CurrentStep | undefined;
  private ready: (() => void) | undefined;
  private diagnostics = '';
  private closing: Promise<void> | undefined;
  private spentBy: string | undefined;

  constructor(private readonly spec: SandboxSpec, private readonly options: OciSandboxOptions) {
    this.stateDir = join(spec.scratchDir, 'state');
    this.logFile = join(spec.scratchDir, 'runtime.log');
    this.globalArgs = ['--root', this.stateDir, '--log', this.logFile, '--log-format', 'json'];
  }

  async start(): Promise<void> {
    const bundle = join(this.spec.scratchDir, 'bundle');
    await mkdir(bundle, { recursive: true });
    const { userNamespace, nofile } = this.options.settings;
    let binds: OciBindMount[] = this.spec.binds.map((bind) => ({ ...bind, source: resolvePath(bind.source) }));
    if (userNamespace) binds = await Promise.all(binds.map(async (bind) => ({ ...bind, flags: await lockableFlagsAt(bind.source) })));
    // koffi's addon must be mapped to be found: the server loads it to make itself non-dumpable.
    libc();
    const koffiAddon = mappedKoffi();
    const launch = nodeThroughDescriptors([serverScript, koffiAddon], (paths) => ['--preserve-symlinks-main', paths[0]!, paths[1]!]);
    const args = [...launch.args, String(launch.directories.length)];
    const server = { args, env: [serverPath], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] } };
    const config = ociConfig({ ...this.spec, ...server, rootfs: resolvePath(this.spec.rootfs), binds }, nofile, userNamespace);
    await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
    await writeFile(join(this.spec.scratchDir, containerRecordName), JSON.stringify({ runtime: this.options.runtimePath, id: this.id } satisfies ContainerRecord));
    const fds = launch.directories.map((dir) => openSync(dir, 'r'));
    try {
      this.child = spawn(this.options.runtimePath, [...this.globalArgs, 'run', '--preserve-fds', String(fds.length), '--bundle', bundle, this.id], {
        stdio: ['pipe', 'pipe', 'pipe', ...fds],
        env: runtimeEnv(),
      });
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    const child = this.child;
    const reader = new FrameReader((type, payload) => this.onFrame(type, payload));
    child.stdout!.on('data', (chunk: Buffer) => reader.push(chunk));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      this.diagnostics = (this.diagnostics + text).slice(-4096);
    });
    // A write to a server that died fails here; its exit reports that.
    child.stdin!.on('error', () => {});
    this.exited = new Promise<Exit>((resolve, reject) => {
      child.once('error', (error) => reject(new TsbuildError('ISOLATION', `cannot start ${this.options.runtimePath}: ${error.message}`, { cause: error })));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.exited.catch(() => {});
    const started = new Promise<void>((resolve) => (this.ready = resolve));
    const outcome = await Promise.race([started.then(() => 'ready' as const), this.exited]);
    if (outcome !== 'ready') throw await this.failure(outcome);
  }

  get spent(): boolean {
    return this.spentBy !== undefined;
  }

  private onFrame(type: number, payload: Buffer): void {
    if (type === frameType.ready) this.ready?.();
    else if (type === frameType.stdout) this.current?.request.stdout(payload);
    else if (type === frameType.stderr) this.current?.request.stderr(payload);
    else if (type === frameType.exit) this.current?.settle(JSON.parse(payload.toString('utf8')) as StepExit);
  }

  /** The error for a container that ended without being asked to. */
  private async failure(exit: Exit): Promise<TsbuildError> {
    const status = exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code}`;
    const detail = [...(await runtimeErrors(this.logFile)), ...this.diagnostics.trim().split('\n').filter((line) => line.trim() !== '')];
    return new TsbuildError('ISOLATION', `the OCI runtime's step sandbox stopped (${status})${detail.length > 0 ? `: ${detail.join('; ')}` : ''}`);
  }

  async run(step: SandboxStep): Promise<RunResult> {
    step.signal?.throwIfAborted();
    if (this.current) throw new TsbuildError('INTERNAL', 'a step sandbox runs one step at a time');
    if (this.closing || !this.child || !this.exited) throw new TsbuildError('INTERNAL', 'the step sandbox is closed');
    if (this.spentBy !== undefined) throw new TsbuildError('INTERNAL', `the step sandbox was spent by ${this.spentBy}`);
    if (this.options.settings.userNamespace) checkIdsMapped(step.user, this.options.settings.userNamespace);
    if (step.user.additionalGids.length > 0) throw new TsbuildError('INTERNAL', 'a step sandbox cannot set supplementary groups');
    const exited = this.exited;
    const reported = new Promise<StepExit>((settle) => (this.current = { request: step, settle }));
    const request: StepRequest = { args: step.args, env: step.env, cwd: step.cwd, uid: step.user.uid, gid: step.user.gid };
    this.send(frameType.run, request);
    let stopping: Promise<void> | undefined;
    const onAbort = (): void => {
      stopping = this.stopStep(reported);
      stopping.catch(() => {});
    };
    step.signal?.addEventListener('abort', onAbort, { once: true });
    let outcome: StepExit | Exit;
    try {
      outcome = await Promise.race([reported, exited]);
    } finally {
      step.signal?.removeEventListener('abort', onAbort);
      this.current = undefined;
      await stopping;
    }
    if ('spent' in outcome && outcome.spent) this.spentBy = JSON.stringify(step.args);
    if (step.signal?.aborted) throw step.signal.reason;
    if ('exitCode' in outcome) return { exitCode: outcome.exitCode };
    if ('error' in outcome) throw new TsbuildError('ISOLATION', `the OCI runtime could not run the process: ${startFailure(step.args[0] ?? '', outcome.error)}`);
    throw await this.failure(outcome);
  }

  /** SIGTERM to the step, then, once the grace period passes, SIGKILL to the whole container. */
  private async stopStep(reported: Promise<StepExit>): Promise<void> {
    this.send(frameType.signal, { signal: 'SIGTERM' });
    if (await settlesWithin(reported, this.options.killGraceMs)) return;
    await this.kill();
  }

  private send(type: number, message: unknown): void {
    this.child?.stdin?.write(encodeFrame(type, Buffer.from(JSON.stringify(message))));
  }

  /** Kills the container's every process: the server is its PID 1. */
  private async kill(): Promise<void> {
    await runtimeCommand(this.options.runtimePath, [...this.globalArgs, 'kill', this.id, '9']);
    await this.exited?.catch(() => undefined);
  }

  close(): Promise<void> {
    return (this.closing ??= this.stop());
  }

  /** Asks the server to end (closing its input), kills the container if it does not, then deletes it. */
  private async stop(): Promise<void> {
    try {
      if (this.child && this.exited) {
        this.child.stdin?.end();
        if (!(await settlesWithin(this.exited, closeGraceMs))) await this.kill();
      }
      const left = this.child === undefined || (await lstatOrUndefined(join(this.stateDir, this.id))) !== undefined;
      if (left) {
        const deleted = await runtimeCommand(this.options.runtimePath, [...this.globalArgs, 'delete', '--force', this.id]);
        const stillThere = deleted.code !== 0 && (await runtimeCommand(this.options.runtimePath, [...this.globalArgs, 'state', this.id])).code === 0;
        if (stillThere) throw new TsbuildError('ISOLATION', `${this.options.runtimePath} could not delete container ${this.id}: ${deleted.stderr.trim()}`);
      }
      await removeIfExists(join(this.spec.scratchDir, containerRecordName));
    } finally {
      await unmountPrivateTmpfs(this.spec.scratchDir);
    }
  }
}

/** Where koffi's native addon was loaded from. */
function mappedKoffi(): string {
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const file = maps.split('\n').map((line) => line.trim().split(/\s+/).slice(5).join(' ')).find((name) => name.endsWith('/koffi.node'));
  if (file === undefined) throw new TsbuildError('ISOLATION', 'cannot find the loaded koffi addon for the step sandbox');
  return file;
}

/** A failed start as runc words it: the executable missing from PATH, or the system error. */
function startFailure(file: string, error: { code: string; syscall: string }): string {
  if (error.code === 'ENOENT' && !file.includes('/')) return `exec: ${JSON.stringify(file)}: executable file not found in $PATH`;
  const reason = error.code === 'ENOENT' ? 'no such file or directory' : error.code === 'EACCES' ? 'permission denied' : error.code;
  return `exec: ${JSON.stringify(file)}: ${reason}`;
}
