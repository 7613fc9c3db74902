import { readlink } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from './errors.js';

/** Symlinks one resolution may follow before it is taken for a loop. */
const MAX_SYMLINKS = 255;

/**
 * Cleans a path from a layer lexically into root-relative form: leading slashes dropped, `.` removed
 * and `..` applied without ever climbing above the root. Returns '' for the root itself.
 */
export function cleanRootRelative(unsafePath: string): string {
  const parts: string[] = [];
  for (const part of unsafePath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

/** Whether a path taken relative to the root (a leading slash meaning the root) climbs above it with `..`. */
export function climbsAboveRoot(unsafePath: string): boolean {
  let depth = 0;
  for (const part of unsafePath.split('/')) {
    if (part === '' || part === '.') continue;
    depth += part === '..' ? -1 : 1;
    if (depth < 0) return true;
  }
  return false;
}

/** How `resolveInRoot` walks a path. */
export interface RootWalkOptions {
  /** Follow a symlink in the last component too. */
  readonly followFinal: boolean;
  /** How many symlinks one resolution may follow before it counts as a loop. */
  readonly maxSymlinks: number;
  /** The error for a loop. */
  readonly loop: () => Error;
  /** Refuse with this error where `..` or an absolute link target would leave the root; clamp at the root when absent. */
  readonly escape?: () => Error;
}

/**
 * Resolves `unsafePath` inside `root` the way it would resolve if `root` were `/`: every component
 * is walked on disk and symlinks are followed, absolute targets restarting at `root`. Components
 * that do not exist are kept as written. Returns the root-relative result ('' for the root), which
 * always lies inside `root`.
 */
export async function resolveInRoot(root: string, unsafePath: string, options: RootWalkOptions): Promise<string> {
  let resolved: string[] = [];
  // Components still to walk, next one last.
  const pending = unsafePath.split('/').reverse();
  let followed = 0;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0 && options.escape) throw options.escape();
      resolved.pop();
      continue;
    }
    const isFinal = pending.every((rest) => rest === '' || rest === '.');
    const target = isFinal && !options.followFinal ? undefined : await readSymlink(path.join(root, ...resolved, part));
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++followed > options.maxSymlinks) throw options.loop();
    if (target.startsWith('/')) {
      if (options.escape) throw options.escape();
      resolved = [];
    }
    pending.push(...target.split('/').reverse());
  }
  return resolved.join('/');
}

/**
 * Joins `unsafePath` to `root` (an absolute, symlink-free directory) the way the path would resolve
 * if `root` were `/`, following every symlink (the last component's too) and never climbing above
 * `root`. Callers that must not follow the last component resolve the parent directory only.
 */
export async function secureJoin(root: string, unsafePath: string): Promise<string> {
  const loop = (): Error => new TsbuildError('UNSAFE_LAYER', `too many symlinks while resolving ${unsafePath}`);
  return path.join(root, await resolveInRoot(root, unsafePath, { followFinal: true, maxSymlinks: MAX_SYMLINKS, loop }));
}

/** The target of the symlink at `p`, or undefined when `p` is missing or not a symlink. */
async function readSymlink(p: string): Promise<string | undefined> {
  try {
    return await readlink(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
