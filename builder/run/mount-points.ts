import { closeSync, constants } from 'node:fs';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { RootDir } from '../../layers/native/in-root.js';
import { resolveInRoot } from '../fs/resolve-path.js';

export interface MountPoint {
  /** Absolute path inside the container. */
  readonly destination: string;
  readonly kind: 'directory' | 'file';
}

/** Mount points a RUN step's sandbox needs besides its bind mounts. */
export const systemMountPoints: readonly MountPoint[] = [
  { destination: '/proc', kind: 'directory' },
  { destination: '/dev', kind: 'directory' },
  { destination: '/sys', kind: 'directory' },
];

/** The stubs a run created for its mount points, so they can be told apart and removed. */
export interface MountStubs {
  /** Root-relative paths of the stubs created (never pre-existing paths). */
  readonly created: ReadonlySet<string>;
  /** The real (symlink-resolved) container paths of every mount point, in order. */
  readonly resolved: ReadonlyMap<string, string>;
  /**
   * Created directories that now hold something besides stubs (the run wrote there), or that the
   * run replaced with something else (a symlink, say), and so belong in its layer, with what it
   * wrote; the other stubs stay out of snapshots.
   */
  usedDirectories(): Promise<Set<string>>;
  /** Removes the stubs (never a used directory) and gives their parent directories back their times. */
  remove(): Promise<void>;
}

/**
 * Makes sure every mount point exists in `rootfs`, creating empty stubs (and missing parents) where
 * it does not, so a runtime never creates anything in the rootfs itself. The stubs are made, looked
 * at and removed only through descriptors opened inside the rootfs, by the exact symlink-free paths
 * they were made at: the process may have replaced any of their parents with a symlink (to a host
 * path, say), and such a path is then left alone.
 */
export async function createMountStubs(rootfs: string, points: readonly MountPoint[]): Promise<MountStubs> {
  const created: string[] = [];
  const directories = new Set<string>();
  // Root-relative parent directory ('' for the root) to its times before the first stub went in.
  const parentTimes = new Map<string, { atimeNs: bigint; mtimeNs: bigint }>();
  const resolved = new Map<string, string>();
  for (const point of points) {
    const rel = await resolveInRoot(rootfs, point.destination, 'rootfs', true);
    resolved.set(point.destination, `/${rel}`);
    const parts = rel.split('/');
    RootDir.with(rootfs, (root) => {
      for (let i = 1; i <= parts.length; i++) {
        const sub = parts.slice(0, i).join('/');
        if (root.lstat(sub, 'refuse')) continue;
        const parent = parts.slice(0, i - 1).join('/');
        if (!parentTimes.has(parent)) {
          const st = root.lstat(parent, 'refuse');
          if (st === undefined) throw new TsbuildError('MOUNT_POINT', `cannot make the mount point ${point.destination}: /${parent} changed`);
          parentTimes.set(parent, { atimeNs: st.atimeNs, mtimeNs: st.mtimeNs });
        }
        if (i === parts.length && point.kind === 'file') {
          closeSync(root.openFile(sub, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, { symlinks: 'refuse', mode: 0o644 }));
        } else {
          root.mkdir(sub, 0o755, 'refuse');
          directories.add(sub);
        }
        created.push(sub);
      }
    });
  }
  const createdSet = new Set(created);
  return {
    created: createdSet,
    resolved,
    usedDirectories: async () =>
      RootDir.with(rootfs, (root) => {
        const used = new Set<string>();
        // Children come after their parents in `created`: deepest first.
        for (const sub of [...created].reverse()) {
          if (!directories.has(sub)) continue;
          const st = root.lstat(sub, 'refuse');
          if (st === undefined) continue;
          const names = st.isDirectory() ? (root.readdir(sub, 'refuse') ?? []) : undefined;
          if (names === undefined || names.some((name) => !createdSet.has(`${sub}/${name}`) || used.has(`${sub}/${name}`))) used.add(sub);
        }
        return used;
      }),
    remove: async () =>
      RootDir.with(rootfs, (root) => {
        for (const sub of [...created].reverse()) {
          const st = root.lstat(sub, 'refuse');
          if (st?.isDirectory()) removeUnlessFull(root, sub);
          else if (st?.isFile() && st.size === 0n) root.remove(sub, false, 'refuse');
        }
        for (const [dir, times] of parentTimes) root.setTimes(dir, times.atimeNs, times.mtimeNs, 'refuse');
      }),
  };
}

/** Removes the directory stub `sub` unless the run left something in it. */
function removeUnlessFull(root: RootDir, sub: string): void {
  try {
    root.remove(sub, true, 'refuse');
  } catch (error) {
    if (!isErrnoCode(error, 'ENOTEMPTY')) throw error;
  }
}
