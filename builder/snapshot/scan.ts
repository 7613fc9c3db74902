import { closeSync, constants, readdirSync } from 'node:fs';
import { fdPath, RootDir } from '../../layers/native/in-root.js';
import { readLinkAt, statAt } from '../../layers/native/stat-at.js';

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

const S_IFMT = 0o170000;
const TYPES = new Map<number, NodeType>([
  [0o100000, 'file'],
  [0o040000, 'directory'],
  [0o120000, 'symlink'],
  [0o010000, 'fifo'],
  [0o020000, 'char'],
  [0o060000, 'block'],
]);

/**
 * Records the metadata of every path under `root`. Synchronous calls in one tight loop: the cost
 * grows with the number of entries, never with file sizes. Paths that vanish while the scan runs
 * are left out. Symlinks are recorded, not followed; mount points are descended like directories.
 * Each directory is opened inside the root with no symlink on its way and its entries are read
 * relative to that descriptor, so a directory swapped for a symlink mid-scan leads nowhere outside.
 */
export async function scanTree(root: string, options: ScanOptions = {}): Promise<TreeSnapshot> {
  const snapshot: TreeSnapshot = new Map();
  const exclude = options.exclude;
  const previous = lastScans.get(root)?.deref();
  // Directories still to read, as root-relative paths ('' is the root).
  const pending: string[] = [''];
  RootDir.with(root, (rootDir) => {
    while (pending.length > 0) {
      const dir = pending.pop()!;
      inDirectory(rootDir, dir, (fd) => {
        for (const name of readdirSync(fdPath(fd))) {
          const rel = dir === '' ? name : `${dir}/${name}`;
          if (exclude !== undefined && exclude(rel)) continue;
          const node = nodeAt(fd, name);
          if (node === undefined) continue;
          const kept = previous?.get(rel);
          snapshot.set(rel, kept !== undefined && !nodeChanged(kept, node) ? kept : node);
          if (node.type === 'directory') pending.push(rel);
        }
      });
    }
  });
  for (const [scanned, ref] of lastScans) if (ref.deref() === undefined) lastScans.delete(scanned);
  lastScans.set(root, new WeakRef(snapshot));
  return snapshot;
}

/**
 * The last scan of each root, held weakly. A new scan of the root shares its node objects where
 * nothing changed, so the scans before and after a step over a large tree hold one set of nodes
 * between them, and the new scan's own copies die young. Nodes are never modified once made.
 */
const lastScans = new Map<string, WeakRef<TreeSnapshot>>();

/** Any stat difference; ctime catches rewrites that restore size and mtime, and xattr changes. */
export function nodeChanged(was: NodeStat, now: NodeStat): boolean {
  return (
    was.type !== now.type ||
    was.mode !== now.mode ||
    was.uid !== now.uid ||
    was.gid !== now.gid ||
    was.size !== now.size ||
    was.mtimeNs !== now.mtimeNs ||
    was.ctimeNs !== now.ctimeNs ||
    !sameInode(was, now) ||
    was.nlink !== now.nlink ||
    was.linkTarget !== now.linkTarget ||
    was.rdev !== now.rdev
  );
}

/** Whether both describe the same inode; inode numbers alone are reused as soon as they are freed. */
export function sameInode(was: NodeStat, now: NodeStat): boolean {
  return was.ino === now.ino && was.dev === now.dev && was.birthtimeNs === now.birthtimeNs;
}

/**
 * `snapshot` with the given paths stat'ed again: updated, added, or dropped when gone. Only those
 * paths are read, not what lies under them. Paths `exclude` leaves out, or under one it leaves out,
 * are skipped.
 */
export function rescanPaths(snapshot: TreeSnapshot, root: string, rels: Iterable<string>, options: ScanOptions = {}): TreeSnapshot {
  const updated = new Map(snapshot);
  RootDir.with(root, (rootDir) => {
    for (const rel of rels) {
      if (rel === '' || isExcluded(rel, options.exclude)) continue;
      const slash = rel.lastIndexOf('/');
      let node: NodeStat | undefined;
      inDirectory(rootDir, slash === -1 ? '' : rel.slice(0, slash), (fd) => {
        node = nodeAt(fd, rel.slice(slash + 1));
      });
      if (node === undefined) updated.delete(rel);
      else updated.set(rel, node);
    }
  });
  return updated;
}

/** Runs `action` with directory `rel` opened inside the root; nothing when it is gone or no longer a directory. */
function inDirectory(rootDir: RootDir, rel: string, action: (fd: number) => void): void {
  const fd = rootDir.tryOpen(rel, constants.O_RDONLY | constants.O_DIRECTORY, { symlinks: 'refuse' });
  if (fd === undefined) return;
  try {
    action(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether `rel` or one of its ancestors is excluded. */
function isExcluded(rel: string, exclude: ScanOptions['exclude']): boolean {
  if (exclude === undefined) return false;
  for (let path = rel; path !== ''; path = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '') {
    if (exclude(path)) return true;
  }
  return false;
}

/** The node `name` in the directory `dirFd`, not followed; undefined when it is gone or of a kind a layer cannot hold. */
function nodeAt(dirFd: number, name: string): NodeStat | undefined {
  const stats = statAt(dirFd, name);
  if (stats === undefined) return undefined;
  const type = TYPES.get(stats.mode & S_IFMT);
  if (type === undefined) return undefined;
  const node: NodeStat = {
    type,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    size: stats.size,
    mtimeNs: stats.mtimeNs,
    ctimeNs: stats.ctimeNs,
    ino: stats.ino,
    dev: stats.dev,
    birthtimeNs: stats.birthtimeNs,
    nlink: stats.nlink,
    rdev: stats.rdev,
  };
  if (type === 'symlink') {
    const target = readLinkAt(dirFd, name);
    if (target === undefined) return undefined;
    node.linkTarget = target;
  }
  return node;
}
