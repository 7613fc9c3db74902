import { errnoError, lazyFunctions } from '../../layers/native/libc.js';
import { unmount } from './unmount.js';

const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;

/** mount(2) and umount2(2), called directly: a RUN step mounts and unmounts its scratch tmpfs, and two `mount` processes per step cost more than the step's own work. */
const mountCalls = lazyFunctions({
  mount: 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
});

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
    return mountCalls().mount('tmpfs', dir, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=0700,size=${size}`) === 0;
  } catch {
    return false;
  }
}

/**
 * Unmounts a tmpfs `mountPrivateTmpfs` mounted on `dir`, so what it held is gone; nothing mounted
 * there is fine. A busy one is left to `unmount`, which detaches it lazily or throws UNMOUNT.
 */
export async function unmountPrivateTmpfs(dir: string): Promise<void> {
  if (mountCalls().umount2(dir, 0) === 0) return;
  const error = errnoError('umount2', dir);
  // EINVAL: `dir` is no mount point, as when mounting was not allowed.
  if (error.code === 'EINVAL') return;
  await unmount(dir);
}
