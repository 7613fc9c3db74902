/**
 * Files in a shared cache directory that belong to one running process: temp files being written
 * and pin files listing the blobs a build was handed. Their names carry the owner (a short hash of
 * the host name and the pid), so that cleanup can tell a live owner's files from a dead one's.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isErrnoCode, lstatOrUndefined, readdirIfExists, removeIfExists } from '../../layers/fs-util.js';
import type { Digest } from '../../layers/types.js';
import { processExists } from '../../layers/layout-lock.js';

export const TEMP_PREFIX = '.tmp-';
/** Files of another host's processes, or named by other code, cannot be checked for liveness; they are dropped when this old. */
const UNKNOWN_OWNER_GRACE_MS = 24 * 3600_000;
const OWNED_NAME = /^([0-9a-f]{8})-(\d+)-[0-9a-f]+$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** A fresh name owned by this process: `<host>-<pid>-<random>`. */
export function ownedName(): string {
  return `${hostTag}-${process.pid}-${randomBytes(8).toString('hex')}`;
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
 * that no longer exists, or for a file of another host or without an owner, untouched for a day.
 */
async function ownerIsGone(path: string, name: string): Promise<boolean> {
  const match = OWNED_NAME.exec(name);
  if (match !== null && match[1] === hostTag) return !processExists(Number(match[2]));
  const info = await lstatOrUndefined(path);
  return info !== undefined && Date.now() - info.mtimeMs > UNKNOWN_OWNER_GRACE_MS;
}
