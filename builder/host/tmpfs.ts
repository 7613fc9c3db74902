import { isErrnoCode } from '../../layers/fs-util.js';
import { mountCall, MS_NODEV, MS_NOEXEC, MS_NOSUID, umountCall } from './mount-calls.js';
import { unmount } from './unmount.js';

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
    mountCall('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=0700,size=${size}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Unmounts a tmpfs `mountPrivateTmpfs` mounted on `dir`, so what it held is gone; nothing mounted
 * there is fine. A busy one is left to `unmount`, which detaches it lazily or throws UNMOUNT.
 */
export async function unmountPrivateTmpfs(dir: string): Promise<void> {
  try {
    umountCall(dir);
  } catch (error) {
    // EINVAL: `dir` is no mount point, as when mounting was not allowed.
    if (isErrnoCode(error, 'EINVAL')) return;
    await unmount(dir);
  }
}
