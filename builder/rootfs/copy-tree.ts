import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TsbuildError } from '../../layers/errors.js';

const execFileAsync = promisify(execFile);

/**
 * Copies the contents of directory `source` into the existing directory `dest`, and `source`'s own
 * metadata onto `dest`, with GNU `cp -a --reflink=auto`: ownership (when permitted), modes, times,
 * symlinks as symlinks, hardlinks within the tree as hardlinks, special files, and xattrs. Where the
 * filesystem allows it, file data is shared copy-on-write instead of being duplicated.
 */
export async function copyTree(source: string, dest: string): Promise<void> {
  try {
    await execFileAsync('cp', ['-a', '--reflink=auto', '--', `${source}/.`, dest], { maxBuffer: 4 * 1024 * 1024 });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    const reason = stderr?.trim().split('\n')[0] || (error as Error).message;
    throw new TsbuildError('ROOTFS_COPY', `cannot copy ${source} to ${dest}: ${reason}`, { cause: error });
  }
}
