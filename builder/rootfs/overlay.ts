/**
 * Overlayfs mounts of a read-only lower directory with a private upper directory, through
 * mount(2) and umount2(2). This works as root, and inside a user namespace (with its own
 * mount namespace) where the kernel allows unprivileged overlay mounts; the mount is visible to this
 * process and its children.
 */
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import { mountCall } from '../host/mount-calls.js';
import { unmount } from '../host/unmount.js';
import { currentIdMapping } from '../isolation/userns.js';

/** Characters that the overlay option syntax gives a meaning (`,` `:` `\`), and white space, which the kernel's option parsing may split at. */
const UNSAFE_OPTION_PATH = /[,:\\\s]/;

/** The kernel takes at most a page of mount options, its terminating NUL included. */
const MAX_OPTIONS_BYTES = 4095;

/** The mount options of an overlay of `lowerDirs` (topmost first) under `upperDir`. */
function overlayOptions(lowerDirs: readonly string[], upperDir: string, workDir: string, extra: readonly string[]): string {
  return [`lowerdir=${lowerDirs.join(':')}`, `upperdir=${upperDir}`, `workdir=${workDir}`, ...extra].join(',');
}

/** The options added to the directories' own, the longest set a mount can use. */
const LONGEST_EXTRA = ['userxattr', 'volatile'];

/** Whether an overlay of these directories fits in the one page of options the kernel takes. */
export function overlayOptionsFit(lowerDirs: readonly string[], upperDir: string, workDir: string): boolean {
  return Buffer.byteLength(overlayOptions(lowerDirs, upperDir, workDir, LONGEST_EXTRA)) <= MAX_OPTIONS_BYTES;
}

/** False once the kernel refused `volatile` (before Linux 5.10). */
let volatileAccepted = true;

/**
 * Mounts at `target` an overlay showing `lowerDirs` stacked, the first topmost (never written),
 * with changes going to `upperDir`; `workDir` is overlayfs's scratch directory on the same
 * filesystem as `upperDir`. All are existing directories given as absolute paths. Throws
 * OVERLAY_MOUNT when the mount fails, including for paths that the mount options cannot express.
 *
 * The mount is `volatile` where the kernel has that: the upper directory is scratch space, so
 * nothing on the mount needs to reach the disk, and without it every sync and the unmount write
 * back the whole filesystem that holds the upper directory.
 */
export async function mountOverlay(lowerDirs: readonly string[], upperDir: string, workDir: string, target: string): Promise<void> {
  for (const dir of [...lowerDirs, upperDir, workDir, target]) {
    if (UNSAFE_OPTION_PATH.test(dir)) throw new TsbuildError('OVERLAY_MOUNT', `cannot mount an overlay with the path ${JSON.stringify(dir)}`);
  }
  if (!overlayOptionsFit(lowerDirs, upperDir, workDir)) throw new TsbuildError('OVERLAY_MOUNT', `cannot mount an overlay at ${target}: its options exceed ${MAX_OPTIONS_BYTES} bytes`);
  // Inside a user namespace overlayfs may not use trusted.* xattrs; it keeps them under user.* then.
  const userXattr = (await currentIdMapping()).kind === 'namespace' ? ['userxattr'] : [];
  const mount = (extra: readonly string[]): void => mountCall('overlay', target, 'overlay', 0, overlayOptions(lowerDirs, upperDir, workDir, [...userXattr, ...extra]));
  try {
    if (volatileAccepted) {
      try {
        mount(['volatile']);
        return;
      } catch (error) {
        if (!isErrnoCode(error, 'EINVAL')) throw error;
        volatileAccepted = false;
      }
    }
    mount([]);
  } catch (error) {
    throw new TsbuildError('OVERLAY_MOUNT', `cannot mount an overlay at ${target}: ${(error as Error).message}`, { cause: error });
  }
}

/** Unmounts the overlay at `target` like any mount: lazily when busy, and nothing mounted there is fine (see `unmount`). */
export const unmountOverlay = unmount;
