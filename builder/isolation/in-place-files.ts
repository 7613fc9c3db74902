import { closeSync, constants, fchmodSync, fchownSync, writeSync, type BigIntStats } from 'node:fs';
import { lstat, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { RootDir } from '../../layers/native/in-root.js';
import type { BindMount } from './backend.js';

/** Bind files written into place for one run. */
export interface PlacedFiles {
  /** Container paths whose contents were replaced or created. */
  readonly placed: readonly string[];
  /** Puts back what was there before (contents, owner, mode, times), or removes what was created. */
  restore(): Promise<void>;
}

interface Saved {
  /** Root-relative path of the destination. */
  readonly rel: string;
  /** Undefined when nothing was there. */
  readonly before?: { readonly content: Buffer; readonly stats: BigIntStats };
}

/**
 * Without mounts, the files a run would get bind-mounted (`/etc/hosts` and the like) are written into
 * `root` in place: an existing file keeps its inode and gets the bind source's contents, a missing
 * one is created. Destinations `skip` accepts (mount points of the container itself, which hold its
 * own versions) are left alone. Only files can be placed this way.
 */
export async function placeBindFiles(root: string, binds: readonly BindMount[], skip: (destination: string) => boolean): Promise<PlacedFiles> {
  const saved: Saved[] = [];
  const placed: string[] = [];
  const files: PlacedFiles = {
    placed,
    restore: async () => {
      RootDir.with(root, (dir) => {
        for (const entry of saved.reverse()) restoreOne(dir, entry);
      });
    },
  };
  try {
    for (const bind of binds) {
      if (skip(bind.destination)) continue;
      if (!(await stat(bind.source)).isFile()) throw new TsbuildError('ISOLATION', `--isolation=none can only place files, and ${bind.source} is not one`);
      const target = path.join(root, bind.destination);
      const found = await lstat(target, { bigint: true }).catch((error: unknown) => {
        if (isErrnoCode(error, 'ENOENT')) return undefined;
        throw error;
      });
      if (found && !found.isFile()) throw new TsbuildError('ISOLATION', `cannot place ${bind.destination}: something other than a file is there`);
      const content = await readFile(bind.source);
      const rel = path.posix.relative('/', path.posix.resolve('/', bind.destination));
      saved.push(found ? { rel, before: { content: await readFile(target), stats: found } } : { rel });
      placed.push(bind.destination);
      // Opening an existing file with O_TRUNC keeps its inode, owner and mode.
      await writeFile(target, content, { mode: 0o644 });
    }
  } catch (error) {
    await files.restore();
    throw error;
  }
  return files;
}

/**
 * Puts one destination back after the run, through descriptors opened inside the root: the run may
 * have replaced the file, or a directory above it, with a symlink. A destination whose parent is no
 * longer the directory it was is left as the run left it.
 */
function restoreOne(dir: RootDir, { rel, before }: Saved): void {
  const now = dir.lstat(rel, 'refuse');
  if (before === undefined) {
    if (now) dir.removeTree(rel, 'refuse');
    return;
  }
  const { content, stats } = before;
  const sameFile = now?.isFile() && now.ino === stats.ino && now.dev === stats.dev;
  if (now && !sameFile) dir.removeTree(rel, 'refuse');
  const mode = Number(stats.mode & 0o7777n);
  const fd = dir.tryOpen(rel, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, { symlinks: 'refuse', mode });
  if (fd === undefined) return;
  try {
    for (let written = 0; written < content.length; ) written += writeSync(fd, content, written);
    fchownSync(fd, Number(stats.uid), Number(stats.gid));
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
  dir.setTimes(rel, stats.atimeNs, stats.mtimeNs, 'refuse');
}
