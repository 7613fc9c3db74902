import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { EntryType, LayerEntry } from '../../layers/entry.js';
import { fileContents, openRegularFile } from '../fs/file-contents.js';
import type { SourceMatch, SourceTree } from '../fs/source-tree.js';
import type { ModeChange } from './chmod.js';
import type { Owner } from './user-db.js';
import { deviceMajor, deviceMinor } from '../../layers/device-number.js';

/** A source a COPY/ADD selected, with the tree it came from. */
export interface SelectedSource {
  readonly tree: SourceTree;
  readonly match: SourceMatch;
}

/** Where and how a COPY/ADD writes its sources. */
export interface CopyTarget {
  /** Real root-relative destination path ('' is `/`). */
  readonly destPath: string;
  /** The destination is a directory: sources go inside it. */
  readonly destIsDirectory: boolean;
  /** Keep each source's matched path under the destination (`--parents`). */
  readonly parents: boolean;
  /** `--chown`, or undefined to keep the tree's ownership (root for a build context). */
  readonly owner?: Owner;
  readonly chmod?: ModeChange;
  /** Paths excluded with `--exclude`, relative to the copied source. */
  readonly isExcluded: (relPath: string) => boolean;
  /** Whether an excluded directory holds nothing a `!` exclude pattern re-includes; when absent, it is searched. */
  readonly canSkipExcludedDir?: (relPath: string) => boolean;
  /** Metadata of an existing path in the destination root filesystem, if there is one. */
  readonly existing: (relPath: string) => Promise<Stats | undefined>;
  /** Time for directories the copy creates, in seconds. */
  readonly now: number;
}

/**
 * Lists the layer entries a COPY produces: every copied file, directory, symlink and special file
 * at its destination, hardlinks kept as links, and every parent directory so the layer is
 * self-describing.
 */
export async function copyEntries(sources: readonly SelectedSource[], target: CopyTarget): Promise<LayerEntry[]> {
  const entries = new Map<string, LayerEntry>();
  const firstPathOfInode = new Map<string, string>();

  const add = (tree: SourceTree, sourceAbs: string, stats: FileInfo, dest: string, linkTarget?: string): void => {
    const { type, inode } = stats;
    if (type === undefined || dest === '') return;
    const linkedTo = type === 'file' && stats.nlink > 1 ? firstPathOfInode.get(inode) : undefined;
    const mode = target.chmod ? target.chmod(stats.mode & 0o7777, type === 'directory') : stats.mode & 0o7777;
    const uid = target.owner?.uid ?? (tree.scope === 'context' ? 0 : stats.uid);
    const gid = target.owner?.gid ?? (tree.scope === 'context' ? 0 : stats.gid);
    const mtime = stats.mtime;
    if (linkedTo !== undefined) {
      entries.set(dest, { path: dest, type: 'hardlink', mode, uid, gid, mtime, linkTarget: linkedTo });
      return;
    }
    if (type === 'file' && stats.nlink > 1) firstPathOfInode.set(inode, dest);
    // One object shape for every entry: tens of thousands of entries with shapes of their own cost more than their data.
    const entry: LayerEntry = { path: dest, type, mode, uid, gid, mtime, size: undefined, linkTarget, devMajor: undefined, devMinor: undefined, open: undefined, openFile: undefined, contentDigest: undefined, sourcePath: undefined };
    if (type === 'file') {
      const size = stats.size;
      entry.size = size;
      entry.open = () => fileContents(sourceAbs, size);
      entry.openFile = () => openRegularFile(sourceAbs);
      entry.sourcePath = sourceAbs;
      const digests = tree.digests;
      if (digests) entry.contentDigest = () => digests.digest(sourceAbs, () => openRegularFile(sourceAbs));
    } else if (type === 'char' || type === 'block') {
      entry.devMajor = deviceMajor(stats.rdev);
      entry.devMinor = deviceMinor(stats.rdev);
    }
    entries.set(dest, entry);
  };

  for (const { tree, match } of sources) {
    const sourceAbs = path.join(tree.root, match.relPath);
    const placed = target.parents ? joinRel(target.destPath, match.matchedPath) : undefined;
    if (match.stats.isDirectory()) {
      const dirDest = placed ?? target.destPath;
      if (!(await target.existing(dirDest))?.isDirectory()) add(tree, sourceAbs, fileInfo(match.stats), dirDest);
      walk(tree, match.relPath, '', target, (abs, stats, rel, link) => add(tree, abs, stats, joinRel(dirDest, rel), link));
    } else if (!target.isExcluded(path.posix.basename(match.matchedPath))) {
      const fileDest = placed ?? (target.destIsDirectory ? joinRel(target.destPath, path.posix.basename(match.matchedPath)) : target.destPath);
      add(tree, sourceAbs, fileInfo(match.stats), fileDest);
    }
  }
  await addParents(entries, target);
  return [...entries.values()];
}

/** The files of `entries` that an unpacker may link rather than write (see LayerEntry.sourcePath), by path. */
export function linkSourcesOf(entries: readonly LayerEntry[]): Map<string, string> {
  const sources = new Map<string, string>();
  for (const entry of entries) if (entry.sourcePath !== undefined) sources.set(entry.path, entry.sourcePath);
  return sources;
}

type Visit = (abs: string, info: FileInfo, relToSource: string, linkTarget?: string) => void;

interface Visited {
  readonly abs: string;
  readonly info: FileInfo;
  readonly rel: string;
  readonly linkTarget?: string;
}

/**
 * Visits a directory's contents depth-first in name order, never following symlinks. The tree is
 * read with synchronous calls: a walk is one lstat per path, and for many small files a round trip
 * through the thread pool for each costs far more than the call itself.
 */
function walk(tree: SourceTree, dirRel: string, relToSource: string, target: CopyTarget, visit: Visit): void {
  const found: Visited[] = [];
  collect(tree, dirRel, relToSource, target, found);
  for (const v of found) visit(v.abs, v.info, v.rel, v.linkTarget);
}

/**
 * Appends to `out` what a walk visits below a directory. A directory that `.dockerignore` or
 * `--exclude` hides is still searched when a `!` exception may re-include something inside it;
 * it is kept, as a parent, only when something is.
 */
function collect(tree: SourceTree, dirRel: string, relToSource: string, target: CopyTarget, out: Visited[]): void {
  const names = readdirSync(path.join(tree.root, dirRel, relToSource)).sort();
  for (const name of names) {
    const rel = relToSource === '' ? name : `${relToSource}/${name}`;
    const treeRel = joinRel(dirRel, rel);
    const ignored = tree.isIgnored(treeRel);
    const excluded = target.isExcluded(rel);
    if ((ignored && (tree.canSkipDir?.(treeRel) ?? false)) || (excluded && (target.canSkipExcludedDir?.(rel) ?? false))) continue;
    const abs = path.join(tree.root, treeRel);
    const info = fileInfo(lstatSync(abs));
    if (ignored || excluded) {
      if (info.type !== 'directory') continue;
      const at = out.length;
      out.push({ abs, info, rel });
      collect(tree, dirRel, rel, target, out);
      if (out.length === at + 1) out.pop();
      continue;
    }
    out.push({ abs, info, rel, linkTarget: info.type === 'symlink' ? readlinkSync(abs) : undefined });
    if (info.type === 'directory') collect(tree, dirRel, rel, target, out);
  }
}

/** Adds the parent directories of every entry: existing ones with their metadata, new ones as the copy creates them. */
async function addParents(entries: Map<string, LayerEntry>, target: CopyTarget): Promise<void> {
  const parents = new Set<string>();
  for (const p of entries.keys()) {
    for (let dir = path.posix.dirname(p); dir !== '.'; dir = path.posix.dirname(dir)) parents.add(dir);
  }
  for (const dir of parents) {
    if (entries.has(dir)) continue;
    const existing = await target.existing(dir);
    entries.set(
      dir,
      existing?.isDirectory()
        ? { path: dir, type: 'directory', mode: existing.mode & 0o7777, uid: existing.uid, gid: existing.gid, mtime: Math.floor(existing.mtimeMs / 1000) }
        : { path: dir, type: 'directory', mode: 0o755, uid: target.owner?.uid ?? 0, gid: target.owner?.gid ?? 0, mtime: target.now },
    );
  }
}

/**
 * What an entry needs of a path's lstat. A walk keeps this rather than the Stats object, which is
 * several times larger and, held for a whole tree, outlives the young generation.
 */
interface FileInfo {
  readonly type: EntryType | undefined;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly size: number;
  readonly nlink: number;
  /** `dev:ino` for a path with other hardlinks, otherwise ''. */
  readonly inode: string;
  readonly rdev: number;
}

function fileInfo(stats: Stats): FileInfo {
  return {
    type: entryType(stats),
    mode: stats.mode,
    uid: stats.uid,
    gid: stats.gid,
    mtime: Math.floor(stats.mtimeMs / 1000),
    size: stats.size,
    nlink: stats.nlink,
    inode: stats.nlink > 1 ? `${stats.dev}:${stats.ino}` : '',
    rdev: stats.rdev,
  };
}

function entryType(stats: Stats): EntryType | undefined {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isCharacterDevice()) return 'char';
  if (stats.isBlockDevice()) return 'block';
  return undefined;
}

function joinRel(dir: string, rel: string): string {
  if (dir === '') return rel;
  return rel === '' ? dir : `${dir}/${rel}`;
}
