import { closeSync, constants, createReadStream } from 'node:fs';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { fdPath, O_PATH, RootDir } from '../../layers/native/in-root.js';
import { readXattrsOf, type XattrMap } from '../../layers/xattrs.js';
import type { NodeStat, TreeSnapshot } from './scan.js';
import { deviceMajor, deviceMinor } from '../../layers/device-number.js';

/** What one step changed, as paths of the snapshot taken after it. */
export interface ChangeSet {
  /** Paths to write into the layer as they are now. */
  present: Set<string>;
  /** Deleted paths; none lies under another deleted path or an opaque directory. */
  whiteouts: Set<string>;
  /** Directories (also in `present`) whose lower contents are hidden. */
  opaque: Set<string>;
}

export interface EntryOptions {
  /** Attributes already read from `root`; missing paths are read into it. */
  xattrs?: XattrCache;
  /** Extended attributes with these names are left out of the entries (e.g. overlayfs bookkeeping). */
  dropXattr?: (name: string) => boolean;
  /** Checks the attributes read from each path before they are used; throws to refuse the path. */
  checkXattrs?: (relPath: string, xattrs: XattrMap) => void;
}

/** Bytes read at a time from a file being put into a layer. */
const READ_CHUNK = 1024 * 1024;

/**
 * Turns `changes` into layer entries, reading metadata from `after` and contents and extended
 * attributes from `root`, the directory `after` was scanned from. Every ancestor directory of a
 * change is added with its current metadata, so the layer describes itself; paths that share an
 * inode become one `file` entry and `hardlink` entries to it. Sorted in layer order.
 */
export async function changesToEntries(changes: ChangeSet, after: TreeSnapshot, root: string, options: EntryOptions = {}): Promise<LayerEntry[]> {
  const sorted = withAncestors(changes, after).sort(comparePaths);
  const linkTargets = hardlinkTargets(sorted, after);
  const xattrs = options.xattrs ?? new XattrCache(root);
  await xattrs.read(sorted.filter((path) => !linkTargets.has(path)));

  const entries: LayerEntry[] = [];
  for (const path of sorted) {
    const node = after.get(path)!;
    const linkTarget = linkTargets.get(path);
    if (linkTarget !== undefined) {
      entries.push({ path, type: 'hardlink', linkTarget, ...ownership(node) });
      continue;
    }
    const entry = toEntry(path, node, root);
    const found = xattrs.get(path);
    if (found !== undefined) {
      options.checkXattrs?.(path, found);
      const kept = Object.entries(found).filter(([name]) => !options.dropXattr?.(name));
      if (kept.length > 0) entry.xattrs = Object.fromEntries(kept);
    }
    entries.push(entry);
  }
  for (const path of changes.whiteouts) entries.push({ path, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: 0 });
  for (const path of changes.opaque) entries.push({ path, type: 'opaque', mode: 0, uid: 0, gid: 0, mtime: 0 });
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

/** The changed paths (whiteouts and markers aside) plus every ancestor directory of any change. */
export function withAncestors(changes: ChangeSet, after: TreeSnapshot): string[] {
  const paths = new Set(changes.present);
  for (const path of [...changes.present, ...changes.whiteouts, ...changes.opaque]) {
    for (let parent = parentOf(path); parent !== '' && !paths.has(parent); parent = parentOf(parent)) {
      if (after.get(parent)?.type === 'directory') paths.add(parent);
    }
  }
  return [...paths];
}

/**
 * Extended attributes of root-relative paths, each path read once. Each is read by its name in its
 * parent directory, opened inside the root without following any symlink, so a parent swapped for a
 * symlink since the scan cannot make it read a path outside.
 */
export class XattrCache {
  private readonly found = new Map<string, XattrMap>();
  private readonly done = new Set<string>();

  constructor(private readonly root: string) {}

  async read(paths: readonly string[]): Promise<void> {
    const missing = paths.filter((path) => !this.done.has(path));
    if (missing.length === 0) return;
    RootDir.with(this.root, (root) => {
      // Layer order keeps the children of one directory together: its descriptor is reused for them.
      let parent: { rel: string; fd: number | undefined } | undefined;
      try {
        for (const path of missing) {
          this.done.add(path);
          const rel = parentOf(path);
          if (parent?.rel !== rel) {
            if (parent?.fd !== undefined) closeSync(parent.fd);
            parent = { rel, fd: root.tryOpen(rel, O_PATH | constants.O_DIRECTORY, { symlinks: 'refuse' }) };
          }
          if (parent.fd === undefined) continue;
          const xattrs = readXattrsOf(`${fdPath(parent.fd)}/${path.slice(path.lastIndexOf('/') + 1)}`, `${this.root}/${path}`);
          if (xattrs !== undefined) this.found.set(path, xattrs);
        }
      } finally {
        if (parent?.fd !== undefined) closeSync(parent.fd);
      }
    });
  }

  /** The attributes of a path already read; undefined when it has none. */
  get(path: string): XattrMap | undefined {
    return this.found.get(path);
  }
}

/**
 * For paths sharing an inode, maps every path but the first (in layer order, so the target is
 * written before its links) to that first path.
 */
function hardlinkTargets(sorted: string[], after: TreeSnapshot): Map<string, string> {
  const first = new Map<string, string>();
  const targets = new Map<string, string>();
  for (const path of sorted) {
    const node = after.get(path)!;
    if (node.type === 'directory' || node.nlink < 2) continue;
    const key = `${node.dev}:${node.ino}`;
    const target = first.get(key);
    if (target === undefined) first.set(key, path);
    else targets.set(path, target);
  }
  return targets;
}

function toEntry(path: string, node: NodeStat, root: string): LayerEntry {
  const entry: LayerEntry = { path, type: node.type, ...ownership(node) };
  switch (node.type) {
    case 'file': {
      entry.size = Number(node.size);
      entry.open = () => createReadStream('', { fd: openScanned(root, path), highWaterMark: READ_CHUNK });
      entry.openFile = () => openScanned(root, path);
      break;
    }
    case 'symlink':
      entry.linkTarget = node.linkTarget;
      break;
    case 'char':
    case 'block':
      entry.devMajor = deviceMajor(node.rdev);
      entry.devMinor = deviceMinor(node.rdev);
      break;
  }
  return entry;
}

/**
 * Opens the file the scan found at `path` for reading, resolved inside `root` with no symlink
 * anywhere on the way: should the path or a parent have become a symlink since the scan, the layer
 * fails rather than take in a file from elsewhere.
 */
function openScanned(root: string, path: string): number {
  try {
    return RootDir.with(root, (dir) => dir.openFile(path, constants.O_RDONLY, { symlinks: 'refuse' }));
  } catch (error) {
    if (isErrnoCode(error, 'ELOOP') || isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) {
      throw new TsbuildError('SNAPSHOT_CHANGED', `${path} changed while its layer was being written`, { cause: error });
    }
    throw error;
  }
}

function ownership(node: NodeStat): Pick<LayerEntry, 'mode' | 'uid' | 'gid' | 'mtime'> {
  return { mode: node.mode, uid: node.uid, gid: node.gid, mtime: Number(node.mtimeNs / 1_000_000_000n) };
}

/** The root-relative parent of `path`; '' for a top-level path. */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? '' : path.slice(0, slash);
}

/** True when a proper ancestor of `path` is in `set`. */
export function hasAncestorIn(path: string, set: ReadonlySet<string>): boolean {
  if (set.size === 0) return false;
  for (let parent = parentOf(path); parent !== ''; parent = parentOf(parent)) {
    if (set.has(parent)) return true;
  }
  return false;
}

/** Layer order: component by component, bytewise, a directory before everything under it. */
export function comparePaths(a: string, b: string): number {
  const left = a.split('/');
  const right = b.split('/');
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    if (left[i] !== right[i]) return Buffer.compare(Buffer.from(left[i]), Buffer.from(right[i]));
  }
  return left.length - right.length;
}
