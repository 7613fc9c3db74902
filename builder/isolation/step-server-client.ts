import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import type { RunResult, RunUser, SandboxStep } from './backend.js';
import { settlesWithin, type Exit } from './oci-runtime-tools.js';
import { encodeFrame, FrameReader, frameType, type StepExit, type StepRequest } from './step-server.cjs';

/** How long a stopping server has to reset and exit before its sandbox is killed. */
const closeGraceMs = 5_000;

/** What a backend adds to the protocol: how to kill its sandbox and how to word its failures. */
export interface StepServerHooks {
  /** How long an aborted step has between SIGTERM and the end of the whole sandbox. */
  readonly killGraceMs: number;
  /** Kills every process of the sandbox. */
  kill(): Promise<void>;
  /** The error for a sandbox that ended without being asked to; `diagnostics` is what it wrote on stderr. */
  failure(exit: Exit, diagnostics: string): Promise<TsbuildError>;
  /** The ids the server gives the step's process (none: the server's own); throws for a user it cannot be. */
  ids(user: RunUser): Pick<StepRequest, 'uid' | 'gid'>;
  /** What a step whose process could not start ends with, as a sandbox of its own would end it. */
  startFailed(step: SandboxStep, error: { readonly code: string; readonly syscall: string }): RunResult;
}

type ServerProcess = ChildProcessByStdio<Writable, Readable, Readable>;

/** The step in progress: where its output and exit go. */
interface CurrentStep {
  readonly request: SandboxStep;
  readonly settle: (exit: StepExit) => void;
}

/**
 * tsbuild's end of a step server (step-server.cts) running as `child`: sends it steps one at a
 * time, relays their output, and stops it. An aborted step gets SIGTERM, then the whole sandbox is
 * killed once the grace period passes.
 */
export class StepServerClient {
  readonly exited: Promise<Exit>;
  private readonly started: Promise<void>;
  private current: CurrentStep | undefined;
  private diagnostics = '';
  private spentBy: string | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly child: ServerProcess, private readonly hooks: StepServerHooks, startError: (error: Error) => TsbuildError) {
    let ready: () => void = () => {};
    this.started = new Promise<void>((resolve) => (ready = resolve));
    const reader = new FrameReader((type, payload) => {
      if (type === frameType.ready) ready();
      else if (type === frameType.stdout) this.current?.request.stdout(payload);
      else if (type === frameType.stderr) this.current?.request.stderr(payload);
      else if (type === frameType.exit) this.current?.settle(JSON.parse(payload.toString('utf8')) as StepExit);
    });
    child.stdout.on('data', (chunk: Buffer) => reader.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      this.diagnostics = (this.diagnostics + text).slice(-4096);
    });
    // A write to a server that died fails here; its exit reports that.
    child.stdin.on('error', () => {});
    this.exited = new Promise<Exit>((resolve, reject) => {
      child.once('error', (error) => reject(startError(error)));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    this.exited.catch(() => {});
  }

  /** Resolves once the server is ready for steps; throws the sandbox's failure if it ended first. */
  async ready(): Promise<void> {
    const outcome = await Promise.race([this.started.then(() => 'ready' as const), this.exited]);
    if (outcome !== 'ready') throw await this.hooks.failure(outcome, this.diagnostics);
  }

  get spent(): boolean {
    return this.spentBy !== undefined;
  }

  async run(step: SandboxStep): Promise<RunResult> {
    step.signal?.throwIfAborted();
    if (this.current) throw new TsbuildError('INTERNAL', 'a step sandbox runs one step at a time');
    if (this.closing) throw new TsbuildError('INTERNAL', 'the step sandbox is closed');
    if (this.spentBy !== undefined) throw new TsbuildError('INTERNAL', `the step sandbox was spent by ${this.spentBy}`);
    if (step.user.additionalGids.length > 0) throw new TsbuildError('INTERNAL', 'a step sandbox cannot set supplementary groups');
    const request: StepRequest = { args: step.args, env: step.env, cwd: step.cwd, ...this.hooks.ids(step.user) };
    const reported = new Promise<StepExit>((settle) => (this.current = { request: step, settle }));
    this.send(frameType.run, request);
    let stopping: Promise<void> | undefined;
    const onAbort = (): void => {
      stopping = this.stopStep(reported);
      stopping.catch(() => {});
    };
    step.signal?.addEventListener('abort', onAbort, { once: true });
    let outcome: StepExit | Exit;
    try {
      outcome = await Promise.race([reported, this.exited]);
    } finally {
      step.signal?.removeEventListener('abort', onAbort);
      this.current = undefined;
      await stopping;
    }
    if ('spent' in outcome && outcome.spent) this.spentBy = JSON.stringify(step.args);
    if (step.signal?.aborted) throw step.signal.reason;
    if ('exitCode' in outcome) return { exitCode: outcome.exitCode };
    if ('error' in outcome) return this.hooks.startFailed(step, outcome.error);
    throw await this.hooks.failure(outcome, this.diagnostics);
  }

  /** SIGTERM to the step, then, once the grace period passes, SIGKILL to the whole sandbox. */
  private async stopStep(reported: Promise<StepExit>): Promise<void> {
    this.send(frameType.signal, { signal: 'SIGTERM' });
    if (await settlesWithin(reported, this.hooks.killGraceMs)) return;
    await this.hooks.kill();
    await this.exited.catch(() => undefined);
  }

  private send(type: number, message: unknown): void {
    this.child.stdin.write(encodeFrame(type, Buffer.from(JSON.stringify(message))));
  }

  /** Asks the server to end (closing its input), and kills the sandbox if it does not. */
  shutdown(): Promise<void> {
    return (this.closing ??= (async () => {
      this.child.stdin.end();
      if (await settlesWithin(this.exited, closeGraceMs)) return;
      await this.hooks.kill();
      await this.exited.catch(() => undefined);
    })());
  }
}
