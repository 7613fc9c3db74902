import { readlinkSync } from 'node:fs';
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
  return resolveBelow(root, '', unsafePath, options);
}

/**
 * Resolves `unsafePath` inside `root` as `resolveInRoot` does, but relative to `resolvedDir`: a
 * root-relative directory that an earlier resolution returned and that holds no symlink since, so
 * its own components need not be walked again. `..` in `unsafePath` or in a link target still
 * climbs out of it, never above the root. Each call reads links with synchronous system calls:
 * one `readlink` per component is cheaper than a round trip through the thread pool.
 */
export function resolveBelow(root: string, resolvedDir: string, unsafePath: string, options: RootWalkOptions): string {
  let resolved = resolvedDir === '' ? [] : resolvedDir.split('/');
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
    const target = isFinal && !options.followFinal ? undefined : readSymlink(path.join(root, ...resolved, part));
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
  return path.join(root, secureJoinBelow(root, '', unsafePath));
}

/**
 * `secureJoin` relative to `resolvedDir`, a root-relative directory it returned before (see
 * `resolveBelow`); returns the root-relative result.
 */
export function secureJoinBelow(root: string, resolvedDir: string, unsafePath: string): string {
  const loop = (): Error => new TsbuildError('UNSAFE_LAYER', `too many symlinks while resolving ${unsafePath}`);
  return resolveBelow(root, resolvedDir, unsafePath, { followFinal: true, maxSymlinks: MAX_SYMLINKS, loop });
}

/** The target of the symlink at `p`, or undefined when `p` is missing or not a symlink. */
function readSymlink(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EINVAL' || code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
