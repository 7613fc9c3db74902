import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/** How an in-place build treats a path of the root filesystem. */
export type PathClass =
  /** A protected path or something under one: never removed, replaced, written or scanned. */
  | 'protected'
  /** A directory above a protected path: kept as a directory; its other contents may go. */
  | 'ancestor'
  /** Everything else: belongs to the stage and may be removed or replaced. */
  | 'free';

/**
 * The paths an in-place build must leave alone, as root-relative POSIX paths (`tmp/ws`, never a
 * leading slash). Built by `protectPaths` and only read afterwards.
 */
export interface ProtectedPaths {
  /** The protected paths, none under another, sorted. */
  readonly roots: readonly string[];
  /** Every directory above a protected path, the root ('') included. */
  readonly ancestors: ReadonlySet<string>;
}

/**
 * Turns absolute paths (already symlink-free: the caller resolves them) into the set an in-place
 * build keeps. `..` and `.` are resolved lexically, trailing slashes dropped, and paths under another
 * protected path folded into it. Throws when a path is relative or is the root itself: protecting
 * `/` would leave nothing the build may replace.
 */
export function protectPaths(absolutePaths: readonly string[]): ProtectedPaths {
  const cleaned = new Set<string>();
  for (const given of absolutePaths) {
    if (!path.posix.isAbsolute(given)) throw new TsbuildError('IN_PLACE', `protected path ${JSON.stringify(given)} is not absolute`);
    const rel = path.posix.normalize(given).split('/').filter((part) => part !== '').join('/');
    if (rel === '') throw new TsbuildError('IN_PLACE', `cannot build in place: ${given} would protect the whole root filesystem`);
    cleaned.add(rel);
  }
  const sorted = [...cleaned].sort();
  const roots = sorted.filter((rel) => !sorted.some((other) => other !== rel && isAtOrUnder(rel, other)));
  const ancestors = new Set<string>();
  if (roots.length > 0) ancestors.add('');
  for (const rel of roots) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) ancestors.add(parts.slice(0, i).join('/'));
  }
  return { roots, ancestors };
}

/** What an in-place build may do with the root-relative path `rel` ('' is the root). */
export function classifyPath(paths: ProtectedPaths, rel: string): PathClass {
  if (paths.ancestors.has(rel)) return 'ancestor';
  return paths.roots.some((root) => isAtOrUnder(rel, root)) ? 'protected' : 'free';
}

/** Whether the root-relative `rel` is `base` or lies under it (component-wise, so `tmpx` is not under `tmp`). */
function isAtOrUnder(rel: string, base: string): boolean {
  return rel === base || rel.startsWith(`${base}/`);
}
