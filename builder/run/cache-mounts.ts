/**
 * The directories of `RUN --mount=type=cache`, kept between builds under one folder:
 * - `<hex>`: the cache whose id hashes to `<hex>` (SHA-256);
 * - `<hex>.lock`: held for a whole run by `locked` and `private` users, and by `prune`;
 * - `<hex>.users/`: one marker file per step using the cache, naming its process;
 * - `<hex>.register.lock`: held briefly while a marker is added, or while `prune` checks them.
 * So `prune` removes only caches that no step uses, and a step never gets a cache being removed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { applyLayer } from '../../layers/apply-layer.js';
import { sha256Digest } from '../../layers/digest.js';
import type { LayerEntry } from '../../layers/entry.js';
import { layerTar } from '../../layers/tar-writer.js';
import { isErrnoCode, readdirIfExists } from '../../layers/fs-util.js';
import { acquireLockFile, processExists, tryLockFile, withLockFile } from '../../layers/layout-lock.js';
import type { Workspace } from '../workspace/workspace.js';
import { defaultCacheDir } from '../locations.js';
import type { CacheRunMount } from '../model/mounts.js';

/** Where cache mounts live: `<cache dir>/run-cache`. */
export function defaultRunCacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(defaultCacheDir(env), 'run-cache');
}

export interface OpenCacheMount {
  readonly dir: string;
  /** Ends this step's use of the cache. */
  release(): Promise<void>;
}

/**
 * The cache's directory under `cacheDir`, made with the mount's mode and owner on first use, and
 * then filled with `seed` (the entries of the mount's `from`) when given.
 * `locked` waits for the cache's lock and holds it for the run; `private` takes the lock when it is
 * free and otherwise gets a fresh directory in `workspace` for this run; `shared` takes no lock.
 */
export async function openCacheMount(mount: CacheRunMount, cacheDir: string, workspace: Workspace, seed?: readonly LayerEntry[]): Promise<OpenCacheMount> {
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const dir = path.join(cacheDir, sha256Digest(mount.id).slice('sha256:'.length));
  let unlock: (() => Promise<void>) | undefined;
  if (mount.sharing === 'locked') unlock = await acquireLockFile(`${dir}.lock`, { timeoutMs: Infinity });
  if (mount.sharing === 'private') {
    unlock = await tryLockFile(`${dir}.lock`);
    if (!unlock) {
      const own = path.join(await workspace.newDir('cache-private'), 'cache');
      await createCacheDirectory(own, mount, seed);
      return { dir: own, release: async () => undefined };
    }
  }
  try {
    const marker = path.join(`${dir}.users`, `${process.pid}-${randomBytes(6).toString('hex')}`);
    await withLockFile(`${dir}.register.lock`, async () => {
      await mkdir(`${dir}.users`, { recursive: true });
      await writeFile(marker, JSON.stringify({ pid: process.pid, host: hostname() }));
      await createCacheDirectory(dir, mount, seed);
    });
    return {
      dir,
      release: async () => {
        await rm(marker, { force: true });
        await unlock?.();
      },
    };
  } catch (err) {
    await unlock?.();
    throw err;
  }
}

/** Removes every cache in `cacheDir` that no step is using; returns how many. */
export async function pruneCacheMounts(cacheDir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdirIfExists(cacheDir)) {
    // Left by a prune that died while removing.
    if (name.startsWith('.prune-')) await rm(path.join(cacheDir, name), { recursive: true, force: true });
    if (!/^[0-9a-f]{64}$/.test(name)) continue;
    const dir = path.join(cacheDir, name);
    const unlock = await tryLockFile(`${dir}.lock`);
    if (!unlock) continue;
    let doomed: string | undefined;
    try {
      await withLockFile(`${dir}.register.lock`, async () => {
        if (await inUse(`${dir}.users`)) return;
        doomed = path.join(cacheDir, `.prune-${name}-${randomBytes(6).toString('hex')}`);
        await rename(dir, doomed);
        await rm(`${dir}.users`, { recursive: true, force: true });
      });
    } finally {
      await unlock();
    }
    if (doomed !== undefined) {
      await rm(doomed, { recursive: true, force: true });
      removed += 1;
    }
  }
  return removed;
}

/** Whether a marker in `usersDir` names a live process; markers of processes gone from this host are removed. */
async function inUse(usersDir: string): Promise<boolean> {
  let used = false;
  for (const marker of await readdirIfExists(usersDir)) {
    const file = path.join(usersDir, marker);
    const owner = await readFile(file, 'utf8').then((text) => JSON.parse(text) as { pid?: unknown; host?: unknown }).catch(() => undefined);
    // A marker that cannot be read is being written: count it as a user.
    const live = owner === undefined || owner.host !== hostname() || typeof owner.pid !== 'number' || processExists(owner.pid);
    if (live) used = true;
    else await rm(file, { force: true });
  }
  return used;
}

/** Makes a cache's directory with its mode and owner and the seed's files, unless it is already there. */
async function createCacheDirectory(dir: string, mount: CacheRunMount, seed: readonly LayerEntry[] | undefined): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    if (isErrnoCode(err, 'EEXIST')) return;
    throw err;
  }
  await chmod(dir, mount.mode);
  await chown(dir, mount.uid, mount.gid);
  if (seed === undefined) return;
  try {
    await applyLayer(dir, layerTar(seed));
  } catch (err) {
    // Half a seed must not pass for a cache that is already there.
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
