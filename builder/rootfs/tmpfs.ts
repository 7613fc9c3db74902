import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Mounts on the existing directory `dir` a tmpfs of about `bytes`, writable only by its owner, where
 * this process may mount one (as root, or in a user namespace with its own mount namespace): what is
 * written there stays in memory and goes when it is unmounted. False, with `dir` left as it was,
 * where mounting is not allowed.
 */
export async function mountPrivateTmpfs(dir: string, bytes: number): Promise<boolean> {
  // tmpfs rounds the size up to whole pages and takes 0 as no limit.
  const size = Math.ceil(bytes / 4096) * 4096 + 8192;
  try {
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `mode=0700,size=${size},nosuid,nodev,noexec`, 'tmpfs', dir]);
    return true;
  } catch {
    return false;
  }
}
