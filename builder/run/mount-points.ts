import { mkdir, readdir, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lstatOrUndefined } from '../../layers/fs-util.js';
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
   * Created directories that now hold something besides stubs (the run wrote there), and so
   * belong in its layer, with what it wrote; the other stubs stay out of snapshots.
   */
  usedDirectories(): Promise<Set<string>>;
  /** Removes the stubs (never a used directory) and gives their parent directories back their times. */
  remove(): Promise<void>;
}

/**
 * Makes sure every mount point exists in `rootfs`, creating empty stubs (and missing parents) where
 * it does not, so a runtime never creates anything in the rootfs itself.
 */
export async function createMountStubs(rootfs: string, points: readonly MountPoint[]): Promise<MountStubs> {
  const created: string[] = [];
  const parentTimes = new Map<string, { atime: Date; mtime: Date }>();
  const resolved = new Map<string, string>();
  for (const point of points) {
    const rel = await resolveInRoot(rootfs, point.destination, 'rootfs', true);
    resolved.set(point.destination, `/${rel}`);
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      const abs = path.join(rootfs, sub);
      if (await lstatOrUndefined(abs)) continue;
      const parent = path.dirname(abs);
      if (!parentTimes.has(parent)) {
        const st = await stat(parent);
        parentTimes.set(parent, { atime: st.atime, mtime: st.mtime });
      }
      if (i === parts.length && point.kind === 'file') await writeFile(abs, '', { mode: 0o644 });
      else await mkdir(abs, { mode: 0o755 });
      created.push(sub);
    }
  }
  const createdSet = new Set(created);
  return {
    created: createdSet,
    resolved,
    usedDirectories: async () => {
      const used = new Set<string>();
      // Children come after their parents in `created`: deepest first.
      for (const sub of [...created].reverse()) {
        if (!(await lstatOrUndefined(path.join(rootfs, sub)))?.isDirectory()) continue;
        const names = await readdir(path.join(rootfs, sub));
        if (names.some((name) => !createdSet.has(`${sub}/${name}`) || used.has(`${sub}/${name}`))) used.add(sub);
      }
      return used;
    },
    remove: async () => {
      for (const sub of [...created].reverse()) {
        const abs = path.join(rootfs, sub);
        const st = await lstatOrUndefined(abs);
        if (st?.isDirectory()) await rmdir(abs).catch(() => undefined);
        else if (st?.isFile() && st.size === 0) await unlink(abs);
      }
      for (const [dir, times] of parentTimes) await utimes(dir, times.atime, times.mtime).catch(() => undefined);
    },
  };
}
