/**
 * Unmounting through umount2(2): one mount point, or everything mounted below a directory before
 * the directory is deleted, so that a deletion never reaches through a mount.
 */
import { TsbuildError } from '../../layers/errors.js';
import { MNT_DETACH, umountCall } from './mount-calls.js';
import { isMountPoint, mountsUnder } from './mountinfo.js';

/**
 * Unmounts what is mounted at `target`; when it is busy (a process still has a file open there),
 * it is detached lazily and the kernel finishes once the last user is gone. Nothing mounted there
 * is fine. Throws UNMOUNT when `target` stays mounted.
 */
export async function unmount(target: string): Promise<void> {
  if (!(await isMountPoint(target))) return;
  let failure: unknown;
  for (const flags of [0, MNT_DETACH]) {
    try {
      umountCall(target, flags);
      return;
    } catch (error) {
      failure = error;
      if (!(await isMountPoint(target))) return;
    }
  }
  throw new TsbuildError('UNMOUNT', `cannot unmount ${target}: ${(failure as Error).message}`, { cause: failure });
}

/** Unmounts every mount at or below `dir`, deepest first (a mount stacked on another comes off first). */
export async function unmountAllUnder(dir: string): Promise<void> {
  // Each pass takes one layer of a stack; a point still listed after a pass has another mount below.
  for (let points = await mountsUnder(dir); points.length > 0; points = await mountsUnder(dir)) {
    for (const point of points) await unmount(point);
  }
}
