/**
 * Overlayfs mounts of a read-only lower directory with a private upper directory, through
 * mount(2) and umount2(2). This works as root, and inside a user namespace (with its own
 * mount namespace) where the kernel allows unprivileged overlay mounts; the mount is visible to this
 * process and its children.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { mountCall } from '../host/mount-calls.js';
import { isMountPoint } from '../host/mountinfo.js';
import { unmount } from '../host/unmount.js';
import { currentIdMapping } from '../isolation/userns.js';

/** Characters that the overlay option syntax gives a meaning (`,` `:` `\`), and white space, which the kernel's option parsing may split at. */
const UNSAFE_OPTION_PATH = /[,:\\\s]/;

let support: Promise<boolean> | undefined;

/**
 * Whether overlay mounts work for this process, found once by mounting a tiny overlay in a scratch
 * directory made under `scratchParent` (which must allow that), and remembered afterwards.
 */
export function overlaySupported(scratchParent: string): Promise<boolean> {
  support ??= probe(scratchParent);
  return support;
}

async function probe(scratchParent: string): Promise<boolean> {
  const scratch = await mkdtemp(path.join(scratchParent, 'overlay-probe-'));
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((name) => path.join(scratch, name));
  try {
    for (const dir of [lower, upper, work, merged]) await mkdir(dir);
    await writeFile(path.join(lower, 'probe'), 'probe');
    await mountOverlay(lower, upper, work, merged);
    await unmountOverlay(merged);
    return true;
  } catch {
    return false;
  } finally {
    // Removed only once nothing is mounted there, so removal can never reach through a mount.
    if (!(await isMountPoint(merged))) await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Mounts at `target` an overlay showing `lowerDir` (never written) with changes going to
 * `upperDir`; `workDir` is overlayfs's scratch directory on the same filesystem as `upperDir`.
 * All four are existing directories given as absolute paths. Throws OVERLAY_MOUNT when the mount
 * fails, including for paths that the mount options cannot express.
 */
export async function mountOverlay(lowerDir: string, upperDir: string, workDir: string, target: string): Promise<void> {
  for (const dir of [lowerDir, upperDir, workDir, target]) {
    if (UNSAFE_OPTION_PATH.test(dir)) throw new TsbuildError('OVERLAY_MOUNT', `cannot mount an overlay with the path ${JSON.stringify(dir)}`);
  }
  // Inside a user namespace overlayfs may not use trusted.* xattrs; it keeps them under user.* then.
  const userXattr = (await currentIdMapping()).kind === 'namespace' ? ',userxattr' : '';
  // One option string, as mount(8) passes it: the kernel takes at most a page of it.
  const options = `lowerdir=${lowerDir},upperdir=${upperDir},workdir=${workDir}${userXattr}`;
  try {
    mountCall('overlay', target, 'overlay', 0, options);
  } catch (error) {
    throw new TsbuildError('OVERLAY_MOUNT', `cannot mount an overlay at ${target}: ${(error as Error).message}`, { cause: error });
  }
}

/** Unmounts the overlay at `target` like any mount: lazily when busy, and nothing mounted there is fine (see `unmount`). */
export const unmountOverlay = unmount;
