/**
 * User namespaces for unprivileged builds: which ids this process has, the subordinate id ranges
 * of a user, and re-executing a command inside a new user + mount namespace where it is uid 0.
 *
 * With ranges in `/etc/subuid` and `/etc/subgid`, the namespace maps 0 to the user and 1..N to the
 * ranges (written by the setuid `newuidmap`/`newgidmap` once the child has unshared), so files of
 * any id up to N keep their ownership on disk. Without ranges only 0 is mapped, to the user.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants as osConstants, userInfo } from 'node:os';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { findHostTool, systemBinDirs } from '../host/host-tools.js';

const execFileAsync = promisify(execFile);

/** Set in the environment of the re-executed command, so it never re-executes again. */
export const userNamespaceEnv = 'TSBUILD_USERNS';
/** The pid of the tsbuild that re-executed itself, in the environment of the re-executed one. */
const userNamespaceParentEnv = 'TSBUILD_USERNS_PARENT';
const PR_SET_PDEATHSIG = 1;

export interface IdRange {
  readonly start: number;
  readonly count: number;
}

/** The ids this process runs with, from `/proc/self/uid_map`. */
export type IdMapping =
  | { readonly kind: 'host' }
  | {
      readonly kind: 'namespace';
      /** The host uid that uid 0 of the namespace is, if 0 is mapped. */
      readonly hostUid: number | undefined;
      /** How many uids the namespace maps. */
      readonly ids: number;
    };

/** Parses a `/proc/PID/uid_map` text: the identity map of all ids means the initial namespace. */
export function parseIdMap(text: string): IdMapping {
  const lines = text.split('\n').map((line) => line.trim().split(/\s+/).map(Number)).filter((fields) => fields.length === 3 && fields.every(Number.isInteger));
  if (lines.some(([inner, outer, count]) => inner === 0 && outer === 0 && count === 4294967295)) return { kind: 'host' };
  return {
    kind: 'namespace',
    hostUid: lines.find(([inner]) => inner === 0)?.[1],
    ids: lines.reduce((sum, [, , count]) => sum + (count ?? 0), 0),
  };
}

/** Whether `id` is mapped in a `/proc/PID/{uid,gid}_map` text. */
export function idMapped(text: string, id: number): boolean {
  return text.split('\n').some((line) => {
    const [inner, , count] = line.trim().split(/\s+/).map(Number);
    return inner !== undefined && count !== undefined && id >= inner && id < inner + count;
  });
}

let ownMapping: Promise<IdMapping> | undefined;

/** This process's id mapping (read once). */
export function currentIdMapping(): Promise<IdMapping> {
  // A file of a few lines in /proc: read at once rather than through the thread pool.
  ownMapping ??= new Promise((resolve) => resolve(readOwnMapping()));
  return ownMapping;
}

function readOwnMapping(): IdMapping {
  let text: string;
  try {
    text = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return { kind: 'host' };
  }
  return parseIdMap(text);
}

/** The ranges `/etc/subuid`-format `text` gives the user, named or by number, in file order. */
export function parseSubordinateIds(text: string, user: { readonly name: string | undefined; readonly id: number }): IdRange[] {
  const ranges: IdRange[] = [];
  for (const line of text.split('\n')) {
    const [owner, start, count] = line.trim().split(':');
    if (owner === undefined || start === undefined || count === undefined || line.trim().startsWith('#')) continue;
    if (owner !== user.name && owner !== String(user.id)) continue;
    if (!/^\d+$/.test(start) || !/^[1-9]\d*$/.test(count)) continue;
    ranges.push({ start: Number(start), count: Number(count) });
  }
  return ranges;
}

async function subordinateIds(file: string, user: { name: string | undefined; id: number }): Promise<IdRange[]> {
  try {
    return parseSubordinateIds(await readFile(file, 'utf8'), user);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
}


/** How the namespace of an unprivileged user maps its ids. */
export interface UserNamespacePlan {
  readonly uid: number;
  readonly gid: number;
  /** Subordinate ranges mapped from id 1 on; both empty for a single-id mapping. */
  readonly uidRanges: readonly IdRange[];
  readonly gidRanges: readonly IdRange[];
  /** Set for a single-id mapping: what the user loses, in one line. */
  readonly warning?: string;
}

/**
 * The mapping for this (unprivileged) process: the user's subordinate ranges when both files have
 * some and `newuidmap`/`newgidmap` are installed, else a single-id mapping with a warning.
 */
export async function planUserNamespace(files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): Promise<UserNamespacePlan> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry: only numeric entries can match
  }
  const uidRanges = await subordinateIds(files.subuid, { name, id: uid });
  const gidRanges = await subordinateIds(files.subgid, { name, id: uid });
  if (uidRanges.length > 0 && gidRanges.length > 0) {
    if (findHostTool('newuidmap') === undefined || findHostTool('newgidmap') === undefined) {
      return singleIdPlan(`user ${name ?? uid} has subordinate ids but newuidmap or newgidmap is missing (Debian package uidmap)`);
    }
    return { uid, gid, uidRanges, gidRanges };
  }
  const missing = [uidRanges.length === 0 ? files.subuid : undefined, gidRanges.length === 0 ? files.subgid : undefined].filter((f) => f !== undefined).join(' and ');
  return singleIdPlan(`no subordinate ids for user ${name ?? uid} in ${missing}`);
}

/**
 * The mapping of this process's own ids alone (uid and gid 0 of the namespace), as BuildKit's
 * rootless mode uses without subordinate ids; `why` says why no ranges are mapped.
 */
export function singleIdPlan(why: string): UserNamespacePlan {
  return {
    uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, uidRanges: [], gidRanges: [],
    warning: `${why}: only root is mapped, so files cannot be owned by other users and RUN steps cannot switch USER`,
  };
}

/** `newuidmap`/`newgidmap` arguments after the pid: 0 to the user's own id, then the ranges from 1 on. */
export function idMapArgs(ownId: number, ranges: readonly IdRange[]): string[] {
  const args = ['0', String(ownId), '1'];
  let inner = 1;
  for (const range of ranges) {
    args.push(String(inner), String(range.start), String(range.count));
    inner += range.count;
  }
  return args;
}

export interface ReexecOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (chunk: Buffer) => void;
  readonly stderr: (chunk: Buffer) => void;
  /** Aborting sends SIGTERM to the command, which is expected to clean up and exit. */
  readonly signal?: AbortSignal;
  /** Called once the namespace exists and its ids are mapped, just before the command starts. */
  readonly onEntered?: () => void;
}

/**
 * The child's shell: says it is in the new namespaces, waits until the parent has written the id
 * maps (the exec that follows then makes it uid 0 with full capabilities in the namespace), and
 * becomes the command. fd 3 is the handshake socket.
 */
const handshakeScript = 'echo ready >&3; read -r go <&3 || exit 125; [ "$go" = go ] || exit 125; exec 3>&-; exec "$@"';

/**
 * Runs `command args` as uid 0 of a new user + mount namespace mapped as `plan` says, with stdin
 * inherited, its output handed to `options`, and `options.env` plus the marker variable. Resolves
 * with its exit status (128+N for signal N). Throws, before the command starts, USERNS_UNAVAILABLE
 * when the namespace cannot be created, and USERNS_ID_MAP when `newuidmap`/`newgidmap` refuse the
 * subordinate ranges (a container that drops their setuid power, say).
 */
export async function runInUserNamespace(command: string, args: readonly string[], plan: UserNamespacePlan, options: ReexecOptions): Promise<number> {
  const [unshare, sh] = [findHostTool('unshare'), findHostTool('sh')];
  if (unshare === undefined || sh === undefined) throw new TsbuildError('USERNS_UNAVAILABLE', 'entering a user namespace needs unshare (util-linux) and sh');
  const single = plan.uidRanges.length === 0;
  const mode = single ? 'single' : 'subordinate';
  const child = spawn(
    unshare,
    ['--user', '--mount', '--propagation', 'private', ...(single ? ['--map-root-user'] : []), '--', sh, '-c', handshakeScript, 'tsbuild-userns', command, ...args],
    { stdio: ['inherit', 'pipe', 'pipe', 'pipe'], env: { ...options.env, [userNamespaceEnv]: mode, [userNamespaceParentEnv]: String(process.pid) } },
  );
  const control = child.stdio[3] as Duplex;
  let ready = false;
  let early = '';
  child.stdout?.on('data', options.stdout);
  child.stderr?.on('data', (chunk: Buffer) => {
    if (ready) options.stderr(chunk);
    else early += chunk.toString('utf8');
  });
  const onAbort = (): void => {
    child.kill('SIGTERM');
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (error) => reject(new TsbuildError('USERNS_UNAVAILABLE', `cannot start ${unshare}: ${error.message}`, { cause: error })));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  try {
    const started = await new Promise<boolean>((resolve) => {
      let text = '';
      control.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (text.includes('ready\n')) resolve(true);
      });
      control.once('close', () => resolve(false));
      control.once('error', () => resolve(false));
    });
    if (!started) {
      await closed.catch(() => undefined);
      options.signal?.throwIfAborted();
      throw new TsbuildError('USERNS_UNAVAILABLE', `cannot create a user namespace: ${firstLine(early) || 'unshare failed'}`);
    }
    if (!single) {
      try {
        await execFileAsync('newuidmap', [String(child.pid), ...idMapArgs(plan.uid, plan.uidRanges)], { env: { PATH: systemBinDirs.join(':') } });
        await execFileAsync('newgidmap', [String(child.pid), ...idMapArgs(plan.gid, plan.gidRanges)], { env: { PATH: systemBinDirs.join(':') } });
      } catch (error) {
        child.kill('SIGKILL');
        await closed.catch(() => undefined);
        const { stderr } = error as { stderr?: string };
        throw new TsbuildError('USERNS_ID_MAP', `cannot map the subordinate ids: ${firstLine(stderr ?? '') || (error as Error).message}`, { cause: error });
      }
    }
    ready = true;
    options.onEntered?.();
    if (early !== '') options.stderr(Buffer.from(early));
    control.end('go\n');
    const { code, signal } = await closed;
    return code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function firstLine(text: string): string {
  return text.split('\n').map((line) => line.trim()).find((line) => line !== '') ?? '';
}

/**
 * In the re-executed tsbuild: be killed with the tsbuild that started it, even when that one is
 * SIGKILLed (entering the user namespace changed this process's credentials, which cleared any
 * parent-death signal), and stop at once when it is already gone.
 */
export async function dieWithParent(env: NodeJS.ProcessEnv): Promise<void> {
  // loaded here, so only the re-executed tsbuild loads the C library for it
  const { prctl } = await import('./launcher/syscalls.js');
  prctl(PR_SET_PDEATHSIG, osConstants.signals.SIGKILL);
  if (String(process.ppid) !== env[userNamespaceParentEnv]) process.kill(process.pid, 'SIGKILL');
}
