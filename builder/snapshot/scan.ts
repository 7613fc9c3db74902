import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { isErrnoCode } from '../../layers/fs-util.js';

/** What a path is. Sockets are not recorded: a layer cannot carry them. */
export type NodeType = 'file' | 'directory' | 'symlink' | 'fifo' | 'char' | 'block';

/** The stat fields of one path that tell whether it changed; no content is read. */
export interface NodeStat {
  type: NodeType;
  /** Permission bits including setuid, setgid and sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  /** Changes on every write, chmod, chown, link count or xattr change, even when mtime is put back. */
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  /** Creation time, 0 where the file system does not record it; tells a new inode that reuses a freed number. */
  birthtimeNs: bigint;
  nlink: number;
  rdev: bigint;
  /** A symlink's target as stored. */
  linkTarget?: string;
}

/** Every path under a root (the root itself excluded), by root-relative POSIX path such as `usr/bin/sh`. */
export type TreeSnapshot = Map<string, NodeStat>;

export interface ScanOptions {
  /** Paths (root-relative) to leave out together with everything under them. */
  exclude?: (relPath: string) => boolean;
}

const S_IFMT = 0o170000n;
const TYPES = new Map<bigint, NodeType>([
  [0o100000n, 'file'],
  [0o040000n, 'directory'],
  [0o120000n, 'symlink'],
  [0o010000n, 'fifo'],
  [0o020000n, 'char'],
  [0o060000n, 'block'],
]);

/**
 * Records the metadata of every path under `root`. Synchronous calls in one tight loop: the cost
 * grows with the number of entries, never with file sizes. Paths that vanish while the scan runs
 * are left out. Symlinks are recorded, not followed; mount points are descended like directories.
 */
export async function scanTree(root: string, options: ScanOptions = {}): Promise<TreeSnapshot> {
  const snapshot: TreeSnapshot = new Map();
  const exclude = options.exclude;
  // Directories still to read, as root-relative paths ('' is the root).
  const pending: string[] = [''];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const names = listDirectory(dir === '' ? root : `${root}/${dir}`);
    for (const name of names) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (exclude !== undefined && exclude(rel)) continue;
      const abs = `${root}/${rel}`;
      const stats = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
      if (stats === undefined) continue;
      const node = toNodeStat(stats, abs);
      if (node === undefined) continue;
      snapshot.set(rel, node);
      if (node.type === 'directory') pending.push(rel);
    }
  }
  return snapshot;
}

/**
 * `snapshot` with the given paths stat'ed again: updated, added, or dropped when gone. Only those
 * paths are read, not what lies under them. Paths `exclude` leaves out, or under one it leaves out,
 * are skipped.
 */
export function rescanPaths(snapshot: TreeSnapshot, root: string, rels: Iterable<string>, options: ScanOptions = {}): TreeSnapshot {
  const updated = new Map(snapshot);
  for (const rel of rels) {
    if (rel === '' || isExcluded(rel, options.exclude)) continue;
    const abs = `${root}/${rel}`;
    const stats = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    const node = stats === undefined ? undefined : toNodeStat(stats, abs);
    if (node === undefined) updated.delete(rel);
    else updated.set(rel, node);
  }
  return updated;
}

/** Whether `rel` or one of its ancestors is excluded. */
function isExcluded(rel: string, exclude: ScanOptions['exclude']): boolean {
  if (exclude === undefined) return false;
  for (let path = rel; path !== ''; path = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '') {
    if (exclude(path)) return true;
  }
  return false;
}

function listDirectory(path: string): string[] {
  try {
    return readdirSync(path);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return [];
    throw error;
  }
}

function toNodeStat(stats: BigIntStats, abs: string): NodeStat | undefined {
  const type = TYPES.get(stats.mode & S_IFMT);
  if (type === undefined) return undefined;
  const node: NodeStat = {
    type,
    mode: Number(stats.mode & 0o7777n),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    size: stats.size,
    mtimeNs: stats.mtimeNs,
    ctimeNs: stats.ctimeNs,
    ino: stats.ino,
    dev: stats.dev,
    birthtimeNs: stats.birthtimeNs,
    nlink: Number(stats.nlink),
    rdev: stats.rdev,
  };
  if (type === 'symlink') {
    try {
      node.linkTarget = readlinkSync(abs);
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) return undefined;
      throw error;
    }
  }
  return node;
}
