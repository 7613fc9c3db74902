import { execFile } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { commandFailure, TsbuildError } from '../../layers/errors.js';

const execFileAsync = promisify(execFile);

/**
 * Copies the contents of directory `source` into the existing directory `dest`, and `source`'s own
 * metadata onto `dest`, with GNU `cp -a --reflink=auto`: ownership (when permitted), modes, times,
 * symlinks as symlinks, hardlinks within the tree as hardlinks, special files, and xattrs. Where the
 * filesystem allows it, file data is shared copy-on-write instead of being duplicated.
 */
export async function copyTree(source: string, dest: string): Promise<void> {
  await runCp(['-a', '--reflink=auto'], source, dest);
}

/**
 * Like `copyTree`, but every non-directory in `dest` is a hard link to its counterpart in `source`
 * (`cp -a --link`): only the directories are new. For trees that nothing changes in place, since a
 * change to a shared inode shows in both. Where links cannot be made (another file system, an
 * inode's link limit) `dest` is emptied and gets a full copy instead.
 */
export async function linkedCopyTree(source: string, dest: string): Promise<void> {
  try {
    await runCp(['-a', '--link'], source, dest);
  } catch {
    await rm(dest, { recursive: true, force: true });
    await mkdir(dest);
    await copyTree(source, dest);
  }
}

async function runCp(flags: readonly string[], source: string, dest: string): Promise<void> {
  try {
    await execFileAsync('cp', [...flags, '--', `${source}/.`, dest], { maxBuffer: 4 * 1024 * 1024 });
  } catch (error) {
    throw new TsbuildError('ROOTFS_COPY', `cannot copy ${source} to ${dest}: ${commandFailure(error)}`, { cause: error });
  }
}
