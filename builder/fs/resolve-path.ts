import { TsbuildError } from '../../layers/errors.js';
import { resolveInRoot as walkInRoot } from '../../layers/secure-join.js';

/**
 * How a tree treats paths that climb above its root. A build context refuses them (they would
 * reach the host); a stage's root filesystem clamps them at `/`, as a process inside it would see.
 */
export type RootScope = 'context' | 'rootfs';

/** The kernel's own limit on symlinks followed in one lookup. */
const maxSymlinkHops = 40;

/**
 * Resolves `relPath` inside `root`, following symlinks in every component (and in the last one
 * when `followFinal`), and returns the real root-relative path ('' for the root itself). Components
 * that do not exist are kept as written. Never returns a path outside the root.
 */
export async function resolveInRoot(root: string, relPath: string, scope: RootScope, followFinal: boolean): Promise<string> {
  return walkInRoot(root, relPath, {
    followFinal,
    maxSymlinks: maxSymlinkHops,
    loop: () => new TsbuildError('SYMLINK_LOOP', `too many levels of symbolic links: ${relPath}`),
    ...(scope === 'context' ? { escape: () => new TsbuildError('OUTSIDE_CONTEXT', `forbidden path outside the build context: ${relPath}`) } : {}),
  });
}

/** Splits a POSIX path into its components, dropping empty ones and `.`. */
export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}
