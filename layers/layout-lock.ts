import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { TsbuildError } from './errors.js';
import { isErrnoCode, removeSmallFileIfExists } from './fs-util.js';

/** Who holds a lock file; written into it as JSON. */
interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

export interface LockOptions {
  /** How long to wait for a live holder before giving up (default 60 s). */
  timeoutMs?: number;
}

/** A lock file whose content cannot be parsed is treated as half-written until it is this old. */
const UNREADABLE_GRACE_MS = 10_000;
const FIRST_DELAY_MS = 5;
const MAX_DELAY_MS = 250;

/**
 * Runs `action` while holding an exclusive lock file at `lockPath` (see `acquireLockFile`).
 */
export async function withLockFile<T>(
  lockPath: string,
  action: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const release = await acquireLockFile(lockPath, options);
  try {
    return await action();
  } finally {
    await release();
  }
}

/**
 * Takes an exclusive lock file at `lockPath` and returns the function that releases it. The file
 * is created with O_EXCL; while another process holds it, creation is retried with growing,
 * jittered delays. A lock left behind by a process of this host that no longer exists is broken.
 * A lock file holds a few bytes: it is created, read and removed at once (no thread-pool round
 * trip); only the wait for another holder yields.
 */
export async function acquireLockFile(lockPath: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  const content = ownContent();
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let delay = FIRST_DELAY_MS;
  while (!tryCreate(lockPath, content)) {
    const held = readLock(lockPath);
    const stale = held !== undefined && isStale(lockPath, held);
    if (Date.now() >= deadline) {
      throw new TsbuildError(
        'LAYOUT',
        `timed out waiting for lock ${lockPath} (${describeOwner(held)}); remove it if no other build is running`,
      );
    }
    if (stale) {
      await breakStaleLock(lockPath, held, content);
      continue;
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }
  return () => releaseLock(lockPath, content);
}

/** Takes the lock file at `lockPath` only if no live holder has it: its release function, or undefined. */
export async function tryLockFile(lockPath: string): Promise<(() => Promise<void>) | undefined> {
  const content = ownContent();
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(lockPath, content)) return () => releaseLock(lockPath, content);
    const held = readLock(lockPath);
    if (held === undefined) continue;
    if (!isStale(lockPath, held)) return undefined;
    await breakStaleLock(lockPath, held, content);
  }
  return undefined;
}

function ownContent(): string {
  const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(16).toString('hex') };
  return JSON.stringify(owner);
}

/** Creates the lock file exclusively; false when it already exists. */
function tryCreate(path: string, content: string): boolean {
  try {
    writeFileSync(path, content, { flag: 'wx', mode: 0o644 });
    return true;
  } catch (error) {
    if (isErrnoCode(error, 'EEXIST')) return false;
    throw error;
  }
}

/** The raw content of a lock file, or undefined when it vanished meanwhile. */
function readLock(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

function isStale(path: string, content: string): boolean {
  const owner = parseOwner(content);
  if (owner === undefined) {
    // The holder may still be writing its content: only an old unreadable lock is stale.
    let info;
    try {
      info = statSync(path);
    } catch {
      info = undefined;
    }
    return info !== undefined && Date.now() - info.mtimeMs > UNREADABLE_GRACE_MS;
  }
  // A PID of another host cannot be checked from here.
  return owner.host === hostname() && !processExists(owner.pid);
}

/**
 * Removes a stale lock, but only if it still has the content judged stale: several waiters may
 * judge the same lock stale, and a fresh lock taken meanwhile must survive. The check-and-remove
 * step is serialized by a second lock file next to the first.
 */
async function breakStaleLock(lockPath: string, staleContent: string, ownContent: string): Promise<void> {
  const guardPath = `${lockPath}.break`;
  if (!tryCreate(guardPath, ownContent)) {
    // Another waiter is breaking it; clear a guard its dead owner left behind.
    const guard = readLock(guardPath);
    if (guard !== undefined && isStale(guardPath, guard)) removeSmallFileIfExists(guardPath);
    await sleep(FIRST_DELAY_MS);
    return;
  }
  try {
    if (readLock(lockPath) === staleContent) removeSmallFileIfExists(lockPath);
  } finally {
    removeSmallFileIfExists(guardPath);
  }
}

/** Removes the lock only if it is still ours (it may have been broken as stale meanwhile). */
async function releaseLock(path: string, content: string): Promise<void> {
  if (readLock(path) === content) removeSmallFileIfExists(path);
}

function parseOwner(content: string): LockOwner | undefined {
  try {
    const value: unknown = JSON.parse(content);
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, token } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
    if (typeof host !== 'string' || typeof token !== 'string') return undefined;
    return { pid, host, token };
  } catch {
    return undefined;
  }
}

function describeOwner(content: string | undefined): string {
  const owner = content === undefined ? undefined : parseOwner(content);
  return owner === undefined ? 'holder unknown' : `held by pid ${owner.pid} on ${owner.host}`;
}

/** Whether process `pid` exists on this host. Signal 0 checks existence only; EPERM means it exists but belongs to someone else. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return isErrnoCode(error, 'EPERM');
  }
}

