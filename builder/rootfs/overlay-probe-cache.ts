/**
 * Remembers, across builds, that a stage's root filesystem was mounted as an overlay here, so that
 * later builds mount one straight away instead of probing first (rootfs/overlay.ts). The probe's
 * unmount waits on the kernel, blocking the process: 1 to 90 ms a build on a busy 2-core machine.
 * The record is keyed by what could change the answer: the kernel, this process's uid and user
 * namespace mapping, and the filesystems of the workspace and of the unpacked layer stacks. Only
 * success is kept; a remembered overlay that fails to mount is forgotten, and that build probes as
 * before, so every build ends with the root filesystem the probe would have given it.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { PreparedRootfs } from './prepare.js';

const FILE = 'overlay-probe.json';

/** Where the record lives and what it must match. */
export interface OverlayProbeCache {
  /** The cache directory holding the record. */
  readonly dir: string;
  /** The build's workspace (its filesystem takes the overlay's upper and work directories). */
  readonly workspaceDir: string;
  /** The unpacked layer stacks, the overlay's lower directories (it may not exist yet). */
  readonly stacksDir: string;
}

/** How a root filesystem is prepared: `auto` probes for overlays, `overlay` mounts one or fails. */
export type PrepareWithMode = (mode: 'auto' | 'overlay') => Promise<PreparedRootfs>;

/**
 * Prepares a root filesystem: an overlay without a probe where one was remembered (a failed mount
 * falls back to `auto`), else `auto`, remembering the overlay it gave.
 */
export async function prepareRememberingOverlay(prepare: PrepareWithMode, cache: OverlayProbeCache): Promise<PreparedRootfs> {
  const key = await probeKey(cache);
  if (await remembered(cache.dir, key)) {
    try {
      return await prepare('overlay');
    } catch (error) {
      if (!(error instanceof TsbuildError && error.code === 'OVERLAY_MOUNT')) throw error;
      await rm(join(cache.dir, FILE), { force: true }).catch(() => undefined);
    }
  }
  const prepared = await prepare('auto');
  if (prepared.upperDir !== undefined) await remember(cache.dir, key);
  return prepared;
}

/** The filesystem `path` is on, or would be on once made: that of its nearest existing ancestor. */
async function device(path: string): Promise<number> {
  for (let at = path; ; at = dirname(at)) {
    const found = await stat(at).catch(() => undefined);
    if (found !== undefined || at === dirname(at)) return found?.dev ?? -1;
  }
}

async function probeKey(cache: OverlayProbeCache): Promise<string> {
  const idMap = await readFile('/proc/self/uid_map', 'utf8').catch(() => '');
  return JSON.stringify({
    kernel: release(),
    uid: process.getuid?.() ?? 0,
    idMap: idMap.trim().split(/\s+/),
    workspaceDevice: await device(cache.workspaceDir),
    stacksDevice: await device(cache.stacksDir),
  });
}

async function remembered(dir: string, key: string): Promise<boolean> {
  try {
    return (JSON.parse(await readFile(join(dir, FILE), 'utf8')) as { key?: unknown }).key === key;
  } catch {
    return false;
  }
}

/** Keeps the record; a cache that cannot be written only costs the next build a probe. */
async function remember(dir: string, key: string): Promise<void> {
  if (await remembered(dir, key)) return;
  try {
    await mkdir(dir, { recursive: true });
    const temp = join(dir, `${FILE}.${process.pid}.tmp`);
    await writeFile(temp, JSON.stringify({ key }));
    await rename(temp, join(dir, FILE));
  } catch {
    // Nothing to do: this build has its overlay.
  }
}
