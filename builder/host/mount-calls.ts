/**
 * mount(2) and umount2(2), called directly through the C library: launching the `mount` or
 * `umount` program costs tens of milliseconds each time, more than the call itself by far.
 */
import { errnoError, lazyFunctions } from '../../layers/native/libc.js';

export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
/** umount2's flag to detach now and finish once the mount is no longer busy. */
export const MNT_DETACH = 0x2;

const calls = lazyFunctions({
  mount: 'int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)',
  umount2: 'int umount2(const char *target, int flags)',
});

/** mount(2); throws a Node-style system error (`code` such as `EPERM`) when it fails. */
export function mountCall(source: string, target: string, fstype: string, flags: number, data: string): void {
  if (calls().mount(source, target, fstype, flags, data) !== 0) throw errnoError('mount', target);
}

/** umount2(2); throws a Node-style system error (`EINVAL` when `target` is no mount point). */
export function umountCall(target: string, flags = 0): void {
  if (calls().umount2(target, flags) !== 0) throw errnoError('umount2', target);
}
