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

/**
 * Joins `unsafePath` to `root` (an absolute, symlink-free directory) the way the path would resolve
 * if `root` were `/`: every component is walked on disk, symlinks are followed (absolute targets
 * restart at `root`) and `..` never climbs above `root`. The result always lies inside `root`.
 * Components that do not exist are appended as they are. The last component is followed too, so
 * callers that must not follow it resolve the parent directory only.
 */
export async function secureJoin(root: string, unsafePath: string): Promise<string> {
  let resolved: string[] = [];
  // Components still to walk, next one last.
  const pending = unsafePath.split('/').reverse();
  let followed = 0;
  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const target = await readSymlink(path.join(root, ...resolved, part));
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    followed += 1;
    if (followed > MAX_SYMLINKS) {
      throw new TsbuildError('UNSAFE_LAYER', `too many symlinks while resolving ${unsafePath}`);
    }
    if (target.startsWith('/')) resolved = [];
    pending.push(...target.split('/').reverse());
  }
  return path.join(root, ...resolved);
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
