import type { Stats } from 'node:fs';
import { chmod, lchown, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';
import type { BindMount } from './backend.js';

/** Bind files written into place for one run. */
export interface PlacedFiles {
  /** Container paths whose contents were replaced or created. */
  readonly placed: readonly string[];
  /** Puts back what was there before (contents, owner, mode, times), or removes what was created. */
  restore(): Promise<void>;
}

interface Saved {
  readonly target: string;
  /** Undefined when nothing was there. */
  readonly before?: { readonly content: Buffer; readonly stats: Stats };
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
      for (const entry of saved.reverse()) await restoreOne(entry);
    },
  };
  try {
    for (const bind of binds) {
      if (skip(bind.destination)) continue;
      if (!(await stat(bind.source)).isFile()) throw new TsbuildError('ISOLATION', `--isolation=none can only place files, and ${bind.source} is not one`);
      const target = path.join(root, bind.destination);
      const found = await lstatOrUndefined(target);
      if (found && !found.isFile()) throw new TsbuildError('ISOLATION', `cannot place ${bind.destination}: something other than a file is there`);
      const content = await readFile(bind.source);
      saved.push(found ? { target, before: { content: await readFile(target), stats: found } } : { target });
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

async function restoreOne({ target, before }: Saved): Promise<void> {
  const now = await lstatOrUndefined(target);
  if (before === undefined) {
    if (now) await rm(target, { recursive: true, force: true });
    return;
  }
  const { content, stats } = before;
  const sameFile = now?.isFile() && now.ino === stats.ino && now.dev === stats.dev;
  if (now && !sameFile) await rm(target, { recursive: true, force: true });
  await writeFile(target, content, { mode: stats.mode & 0o7777 });
  await lchown(target, stats.uid, stats.gid);
  await chmod(target, stats.mode & 0o7777);
  await utimes(target, stats.atime, stats.mtime);
}
