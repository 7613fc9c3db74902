/** Shared helpers of tests that compare file trees: run a step on a real tree, apply its layer, compare trees. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, lstatSync, openSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { applyLayer } from '../../layers/apply-layer.js';
import type { LayerEntry } from '../../layers/entry.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { writeLayer } from '../../layers/write-layer.js';
import { readXattrs, writeXattrsOfPaths, type XattrMap } from '../../layers/xattrs.js';

/** Runs a shell script with `cwd` as working directory; throws with its stderr when it fails. */
export function sh(script: string, cwd: string): void {
  execFileSync('sh', ['-ec', script], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** What a comparison looks at for one path. */
interface PathState {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  sha256?: string;
  linkTarget?: string;
  rdev?: number;
  xattrs: Record<string, string>;
}

export interface TreeState {
  paths: Record<string, PathState>;
  /** Sorted groups of paths that share an inode. */
  hardlinks: string[][];
}

/** Type, mode, owner, mtime (seconds), size, content hash, link target, device, xattrs and hardlink groups of every path under `root`. */
export async function treeState(root: string): Promise<TreeState> {
  const paths: Record<string, PathState> = {};
  const inodes = new Map<number, string[]>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, path);
      const stats = lstatSync(abs);
      const state: PathState = {
        type: typeName(stats.mode),
        mode: stats.mode & 0o7777,
        uid: stats.uid,
        gid: stats.gid,
        mtime: Math.floor(stats.mtimeMs / 1000),
        xattrs: {},
      };
      if (stats.isFile()) {
        state.size = stats.size;
        state.sha256 = fileSha256(abs);
      }
      if (stats.isSymbolicLink()) state.linkTarget = readlinkSync(abs);
      if (stats.isCharacterDevice() || stats.isBlockDevice()) state.rdev = stats.rdev;
      paths[path] = state;
      if (!stats.isDirectory() && stats.nlink > 1) inodes.set(stats.ino, [...(inodes.get(stats.ino) ?? []), path]);
      if (stats.isDirectory()) walk(path);
    }
  };
  walk('');
  const xattrs = await readXattrs(Object.keys(paths).map((path) => join(root, path)));
  for (const [path, state] of Object.entries(paths)) {
    for (const [name, value] of Object.entries(xattrs.get(join(root, path)) ?? {})) state.xattrs[name] = value.toString('hex');
  }
  const hardlinks = [...inodes.values()].filter((group) => group.length > 1).map((group) => group.sort()).sort();
  return { paths, hardlinks };
}

/** SHA-256 of a file's contents, read in chunks so large files never sit in memory. */
function fileSha256(file: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(file, 'r');
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function typeName(mode: number): string {
  const names: Record<number, string> = { 0o100000: 'file', 0o040000: 'directory', 0o120000: 'symlink', 0o010000: 'fifo', 0o020000: 'char', 0o060000: 'block', 0o140000: 'socket' };
  return names[mode & 0o170000] ?? 'unknown';
}

/**
 * Writes `entries` as an uncompressed layer into a temp blob store under `work`, applies it onto
 * `root`, and sets the extended attributes the layer carried (apply cannot set them itself).
 */
export async function applyEntries(entries: LayerEntry[], root: string, work: string): Promise<void> {
  const store = await OciLayout.open(await mkdtemp(join(work, 'store-')), { create: true });
  const layer = await writeLayer(entries, store, { compression: 'uncompressed' });
  const stats = await applyLayer(root, createReadStream(store.path(layer.descriptor.digest)));
  const byPath = new Map<string, XattrMap>();
  for (const [rel, xattrs] of stats.xattrs) byPath.set(join(root, rel), xattrs);
  await writeXattrsOfPaths(byPath);
}

/** Entries by path, as `type` or `type:linkTarget`, for compact assertions. */
export function summary(entries: LayerEntry[]): Record<string, string> {
  return Object.fromEntries(entries.map((entry) => [entry.path, entry.type === 'hardlink' ? `hardlink:${entry.linkTarget}` : entry.type]));
}

/** File and directory times differ between two runs by nature; everything else must match. */
export function withoutTimes(state: TreeState): TreeState {
  return { ...state, paths: Object.fromEntries(Object.entries(state.paths).map(([p, st]) => [p, { ...st, mtime: 0 }])) };
}
