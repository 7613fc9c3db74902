/**
 * The step server: PID 1 of a sandbox kept for a stage's steps, which runs one step at a time on
 * request. In an OCI container (oci-sandbox.ts) it is this file, started through the descriptors
 * the runtime passed; it imports only Node's own modules (the container holds nothing else of
 * ours), and is CommonJS so that Node runs it from a `/proc/self/fd` path. The namespace launcher
 * (launcher-main.ts) calls `serveSteps` itself once its sandbox is set up.
 *
 * Both directions carry frames: one type byte, a 32-bit big-endian length, the payload.
 * Parent to server: `run` (JSON {args, env, cwd, uid?, gid?}), `signal` (JSON {signal}).
 * Server to parent, all on stdout so that a step's last output always comes before its exit
 * report: `ready`, `stdout`, `stderr` (raw bytes), `exit` (JSON StepExit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

export const frameType = { run: 0x72, signal: 0x73, ready: 0x52, stdout: 0x6f, stderr: 0x65, exit: 0x78 } as const;

export interface StepRequest {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly uid?: number;
  readonly gid?: number;
}

/**
 * How a step ended: its status (128+N for signal N), or why it could not start (errno code and
 * system call); `spent` when it changed what later steps would inherit from the server.
 */
export type StepExit = ({ readonly exitCode: number } | { readonly error: { readonly code: string; readonly syscall: string } }) & { readonly spent?: true };

export function encodeFrame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Splits a byte stream into frames, handing each to `onFrame` in order. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (type: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1);
      if (this.pending.length < 5 + length) return;
      const type = this.pending.readUInt8(0);
      const payload = this.pending.subarray(5, 5 + length);
      this.pending = this.pending.subarray(5 + length);
      this.onFrame(type, payload);
    }
  }
}

export interface Libc {
  prctl(option: number, arg2: number, arg3: number, arg4: number, arg5: number): number;
  kill(pid: number, signal: number): number;
  waitpid(pid: number, status: null, options: number): number;
  shmctl(id: number, command: number, buffer: null): number;
  msgctl(id: number, command: number, buffer: null): number;
  semctl(id: number, semnum: number, command: number): number;
  sigaction(signal: number, action: Buffer, old: null): number;
  waitid(idtype: number, id: number, info: Buffer, options: number): number;
  ioprioGet(): number;
}

/** ioprio_get's system call number, which libc does not wrap. */
const ioprioGetNumber: Partial<Record<string, number>> = { x64: 252, arm64: 31 };

const PR_SET_DUMPABLE = 4;
const IPC_RMID = 0;

/**
 * The signals Node catches but a PID 1 need not: SIGUSR1 would open Node's inspector in the server
 * for a step to connect to; SIGINT and SIGTERM would end it. Ignored, a step's kill has no effect.
 */
const ignoredSignals = ['SIGUSR1', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A `struct sigaction` (the same layout in glibc and musl) whose handler is SIG_IGN. */
function ignoreAction(): Buffer {
  const action = Buffer.alloc(256);
  action.writeBigUInt64LE(1n, 0);
  return action;
}

/** koffi's API, as much of it as the server uses. */
export interface Koffi {
  load(name: string): { func(signature: string): (...args: unknown[]) => number };
}

/** The C functions the server calls, bound through `koffi`: before any change of root, which may lack the library. */
export function bindLibc(koffi: Koffi): Libc {
  let lib: ReturnType<Koffi['load']> | undefined;
  for (const name of ['libc.so.6', `libc.musl-${process.arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`]) {
    try {
      lib = koffi.load(name);
      break;
    } catch {
      // Not this C library: try the next name.
    }
  }
  if (!lib) throw new Error('cannot load the C library');
  return {
    prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)'),
    kill: lib.func('int kill(int, int)'),
    waitpid: lib.func('int waitpid(int, void *, int)'),
    shmctl: lib.func('int shmctl(int, int, void *)'),
    msgctl: lib.func('int msgctl(int, int, void *)'),
    semctl: lib.func('int semctl(int, int, int)'),
    sigaction: lib.func('int sigaction(int, void *, void *)'),
    waitid: lib.func('int waitid(int, int, void *, int)'),
    ioprioGet: ((syscall) => () => {
      const number = ioprioGetNumber[process.arch];
      // IOPRIO_WHO_PROCESS, this process.
      return number === undefined ? 0 : syscall(number, 1, 0);
    })(lib.func('long syscall(long, int, int)')),
  };
}

const P_ALL = 0;
const WNOHANG = 1;
const WEXITED = 4;
const WNOWAIT = 0x01000000;

/**
 * Reaps the processes a step orphaned (they become this PID 1's children) as they exit, as the
 * step's PID 1 would in a container of its own, but never `step`: Node reaps that one itself.
 */
function reapOrphans(libc: Libc, step: number | undefined): void {
  const info = Buffer.alloc(128);
  for (;;) {
    info.fill(0);
    if (libc.waitid(P_ALL, 0, info, WEXITED | WNOHANG | WNOWAIT) !== 0) return;
    // siginfo_t: si_signo, si_errno, si_code, padding, then si_pid (0 when no child has exited).
    const pid = info.readInt32LE(16);
    if (pid === 0 || pid === step) return;
    libc.waitpid(pid, null, WNOHANG);
  }
}

function readOr(file: string, otherwise: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return otherwise;
  }
}

/**
 * What a step, as the same uid, can change in this process and the next steps would inherit from
 * it: resource limits (prlimit), nice value and scheduling policy (renice, chrt), CPU and memory
 * affinity (taskset), I/O priority (ionice), OOM score, core dump filter and autogroup.
 */
function inheritedState(libc: Libc): string {
  const statText = readFileSync('/proc/self/stat', 'utf8');
  const stat = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync('/proc/self/status', 'utf8').split('\n').filter((line) => /^(Cpus|Mems)_allowed(_list)?:/.test(line));
  return JSON.stringify([
    // Fields 18, 19, 40 and 41 of stat: priority, nice, rt_priority, policy.
    stat[15], stat[16], stat[37], stat[38], status,
    readFileSync('/proc/self/limits', 'utf8'),
    readOr('/proc/self/oom_score_adj', ''), readOr('/proc/self/coredump_filter', ''), readOr('/proc/self/autogroup', '').replace(/^\/autogroup-\d+ /, ''),
    libc.ioprioGet(),
  ]);
}

/** The ids in a `/proc/sysvipc/*` table (the id is the second column). */
function ipcIds(table: string): number[] {
  let text: string;
  try {
    text = readFileSync(`/proc/sysvipc/${table}`, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').slice(1).map((line) => Number(line.trim().split(/\s+/)[1])).filter(Number.isInteger);
}

/** Every path under `dir` (relative to it), for telling later additions apart. */
function listTree(dir: string): Set<string> {
  const names = new Set<string>();
  const walk = (sub: string): void => {
    for (const entry of readdirSync(`${dir}/${sub}`, { withFileTypes: true })) {
      const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
      names.add(rel);
      if (entry.isDirectory() && !entry.isSymbolicLink() && rel !== 'pts') walk(rel);
    }
  };
  walk('');
  return names;
}

/**
 * What a container per step would give each step afresh and this one container must reset: no
 * process but the server, no System V IPC object, `/dev` (with `/dev/shm` and `/dev/mqueue`) as
 * the container started with it.
 */
function resetSandbox(libc: Libc, devAtStart: ReadonlySet<string>): void {
  libc.kill(-1, osConstants.signals.SIGKILL);
  // Every killed process is this one's child by the time it is a zombie: reap until none is left.
  while (libc.waitpid(-1, null, 0) > 0);
  for (const id of ipcIds('shm')) libc.shmctl(id, IPC_RMID, null);
  for (const id of ipcIds('msg')) libc.msgctl(id, IPC_RMID, null);
  for (const id of ipcIds('sem')) libc.semctl(id, 0, IPC_RMID);
  const now = [...listTree('/dev')].sort().reverse();
  for (const rel of now) if (!devAtStart.has(rel) && !rel.startsWith('pts/')) rmSync(`/dev/${rel}`, { recursive: true, force: true });
}

/**
 * Serves steps on stdin and stdout, as the PID 1 of the sandbox's pid namespace, once it has made
 * itself non-dumpable (no step may trace it or read its memory, descriptors or environment through
 * /proc) and ignored the signals Node catches. A request without uid and gid keeps the server's.
 */
export function serveSteps(libc: Libc): void {
  if (libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) !== 0) throw new Error('cannot make the step server non-dumpable');
  for (const name of ignoredSignals) {
    if (libc.sigaction(osConstants.signals[name], ignoreAction(), null) !== 0) throw new Error(`cannot ignore ${name} in the step server`);
  }
  const devAtStart = listTree('/dev');
  const stateAtStart = inheritedState(libc);
  const send = (type: number, payload: Buffer): void => {
    process.stdout.write(encodeFrame(type, payload));
  };
  let step: ChildProcess | undefined;
  const run = (request: StepRequest): void => {
    let settled = false;
    const finish = (exit: StepExit): void => {
      if (settled) return;
      settled = true;
      step = undefined;
      resetSandbox(libc, devAtStart);
      const spent = inheritedState(libc) !== stateAtStart;
      send(frameType.exit, Buffer.from(JSON.stringify(spent ? { ...exit, spent } : exit)));
    };
    const failed = (error: NodeJS.ErrnoException): void => finish({ error: { code: error.code ?? 'EIO', syscall: error.syscall ?? 'spawn' } });
    // As execve's environment list reads with getenv: the first of two same names counts.
    const env: Record<string, string> = {};
    for (const pair of request.env) {
      const name = pair.slice(0, pair.indexOf('='));
      if (pair.includes('=') && !(name in env)) env[name] = pair.slice(name.length + 1);
    }
    const [file, ...args] = request.args;
    let child: ChildProcess;
    try {
      const ids = request.uid === undefined || request.gid === undefined ? {} : { uid: request.uid, gid: request.gid };
      child = spawn(file ?? '', args, { env, cwd: request.cwd, ...ids, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      failed(error as NodeJS.ErrnoException);
      return;
    }
    step = child;
    child.stdout?.on('data', (chunk: Buffer) => send(frameType.stdout, chunk));
    child.stderr?.on('data', (chunk: Buffer) => send(frameType.stderr, chunk));
    child.once('error', failed);
    let status: number | undefined;
    let drained = 0;
    const report = (): void => {
      if (status !== undefined && drained === 2) finish({ exitCode: status });
    };
    // Output ends once everything that held the pipes is dead: the step, then whatever it left behind.
    for (const stream of [child.stdout, child.stderr]) stream?.once('close', () => (drained++, report()));
    child.once('exit', (code, signal) => {
      status = code ?? 128 + (signal ? osConstants.signals[signal] : 0);
      libc.kill(-1, osConstants.signals.SIGKILL);
      report();
    });
  };
  const reader = new FrameReader((type, payload) => {
    const message = JSON.parse(payload.toString('utf8')) as unknown;
    if (type === frameType.run) run(message as StepRequest);
    else if (type === frameType.signal) step?.kill((message as { signal: NodeJS.Signals }).signal);
  });
  process.on('SIGCHLD', () => reapOrphans(libc, step?.pid));
  process.stdin.on('data', (chunk: Buffer) => reader.push(chunk));
  // The parent closing our input is the end of the stage.
  process.stdin.once('end', () => {
    resetSandbox(libc, devAtStart);
    process.exit(0);
  });
  send(frameType.ready, Buffer.alloc(0));
}

/** Started by the OCI runtime: koffi's addon, then how many descriptors the runtime passed. */
function main(koffiPath: string, passedFds: number): void {
  // Loaded as it is (require would resolve the /proc/self/fd path to a host path this root lacks).
  const addon = { exports: {} };
  process.dlopen(addon, koffiPath);
  const libc = bindLibc(addon.exports as Koffi);
  // The descriptors that reached the host's node and libraries: nothing a step may inherit or reach.
  for (let fd = 3; fd < 3 + passedFds; fd++) closeSync(fd);
  serveSteps(libc);
}

if (require.main === module) {
  main(process.argv[2] ?? '', Number(process.argv[3]));
}
