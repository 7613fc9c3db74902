/**
 * Files in a shared directory that belong to one running process: temp files being written, pin
 * files listing the blobs a build was handed, build workspaces. Their names carry the owner (a short
 * hash of the host name and PID namespace, the pid, and the process's start time), so that cleanup
 * can tell a live owner's files from a dead one's, even once the pid has been reused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isErrnoCode, lstatOrUndefined, readdirIfExists, removeIfExists } from '../../layers/fs-util.js';
import type { Digest } from '../../layers/types.js';
import { processStartTime } from '../host/process-start.js';

export const TEMP_PREFIX = '.tmp-';
/** Files of another host's processes, or named by other code, cannot be checked for liveness; they are dropped when this old. */
const UNKNOWN_OWNER_GRACE_MS = 24 * 3600_000;
/** `<host>-<pid>-<start>-<random>`; names written before the start time was added lack it. */
const OWNED_NAME = /^([0-9a-f]{8})-(\d+)-(?:(\d+)-)?[0-9a-f]{16}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Pids mean something only within one PID namespace, so the namespace is part of the host. */
const hostTag = createHash('sha256').update(hostname()).update(readlinkSync('/proc/self/ns/pid')).digest('hex').slice(0, 8);
const ownStart = processStartTime(process.pid);

/** A fresh name owned by this process: `<host>-<pid>-<start>-<random>`. */
export function ownedName(): string {
  return `${hostTag}-${process.pid}-${ownStart}-${randomBytes(8).toString('hex')}`;
}

/** Whether `name` has the form `ownedName` gives. */
export function isOwnedName(name: string): boolean {
  return OWNED_NAME.test(name);
}

/** Removes the temp files in `dir` whose owner is gone (a crash mid-write leaves them behind). */
export async function removeDeadTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(TEMP_PREFIX) && (await ownerIsGone(join(dir, name), name.slice(TEMP_PREFIX.length)))) {
      await removeIfExists(join(dir, name));
    }
  }
}

/**
 * The blobs this store instance has handed out, recorded in its own pin file under the pins
 * directory until `release`. Eviction keeps pinned blobs while their owner lives.
 */
export class BlobPins {
  private file: string | undefined;
  private readonly pinned = new Set<Digest>();

  constructor(private readonly dir: string) {}

  /** Returns once the pin is on disk (and so visible to any eviction that starts later). */
  async pin(digest: Digest): Promise<void> {
    if (this.pinned.has(digest)) return;
    this.file ??= join(this.dir, ownedName());
    await mkdir(this.dir, { recursive: true });
    await appendFile(this.file, `${digest}\n`);
    this.pinned.add(digest);
  }

  async release(): Promise<void> {
    if (this.file !== undefined) await removeIfExists(this.file);
    this.file = undefined;
    this.pinned.clear();
  }
}

/** The blobs pinned by live processes; pin files of dead ones are removed on the way. */
export async function livePins(dir: string): Promise<Set<Digest>> {
  const pinned = new Set<Digest>();
  for (const name of await readdirIfExists(dir)) {
    const path = join(dir, name);
    if (await ownerIsGone(path, name)) {
      await removeIfExists(path);
      continue;
    }
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) continue;
      throw error;
    }
    for (const line of text.split('\n')) if (DIGEST.test(line)) pinned.add(line as Digest);
  }
  return pinned;
}

/**
 * Whether the process that owns the file named `name` at `path` is gone: a process of this host
 * that no longer exists (or whose pid now names a process started at another time), or for a file
 * of another host or PID namespace, or without an owner, untouched for a day.
 */
export async function ownerIsGone(path: string, name: string): Promise<boolean> {
  const match = OWNED_NAME.exec(name);
  if (match !== null && match[1] === hostTag) {
    const start = processStartTime(Number(match[2]));
    return start === undefined || (match[3] !== undefined && start !== match[3]);
  }
  const info = await lstatOrUndefined(path);
  return info !== undefined && Date.now() - info.mtimeMs > UNKNOWN_OWNER_GRACE_MS;
}
