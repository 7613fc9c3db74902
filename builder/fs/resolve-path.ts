import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/**
 * How a tree treats paths that climb above its root. A build context refuses them (they would
 * reach the host); a stage's root filesystem clamps them at `/`, as a process inside it would see.
 */
export type RootScope = 'context' | 'rootfs';

const maxSymlinkHops = 40;

/**
 * Resolves `relPath` inside `root`, following symlinks in every component (and in the last one
 * when `followFinal`), and returns the real root-relative path ('' for the root itself). Components
 * that do not exist are kept as written. Never returns a path outside the root.
 */
export async function resolveInRoot(
  root: string,
  relPath: string,
  scope: RootScope,
  followFinal: boolean,
): Promise<string> {
  const resolved: string[] = [];
  const pending = splitPath(relPath);
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      if (resolved.length === 0) {
        if (scope === 'context') throw outside(relPath);
        continue;
      }
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const isFinal = pending.length === 0;
    const target = isFinal && !followFinal ? undefined : await symlinkTarget(path.join(root, ...candidate));
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++hops > maxSymlinkHops) throw new TsbuildError('SYMLINK_LOOP', `too many levels of symbolic links: ${relPath}`);
    if (path.posix.isAbsolute(target)) {
      if (scope === 'context') throw outside(relPath);
      resolved.length = 0;
    }
    pending.unshift(...splitPath(target));
  }
  return resolved.join('/');
}

/** Splits a POSIX path into its components, dropping empty ones and `.`. */
export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

async function symlinkTarget(abs: string): Promise<string | undefined> {
  try {
    const st = await lstat(abs);
    return st.isSymbolicLink() ? await readlink(abs) : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function outside(relPath: string): TsbuildError {
  return new TsbuildError('OUTSIDE_CONTEXT', `forbidden path outside the build context: ${relPath}`);
}
