/**
 * Removal of build workspaces, including those of builds that died (killed, or the machine
 * stopped): leftover containers are deleted, everything mounted inside is unmounted, deepest
 * first, and only then are the files deleted, so a deletion never reaches through a mount.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { lstatOrUndefined, readdirIfExists } from '../../layers/fs-util.js';
import { tryLockFile } from '../../layers/layout-lock.js';
import { isOwnedName, ownerIsGone } from '../cache/local-store-owners.js';
import { deleteLeftoverContainers } from '../isolation/oci-runtime.js';
import { unmountAllUnder } from '../host/unmount.js';

/** A workspace is named `tsbuild-` and the owner name of the process it belongs to (see local-store-owners.ts). */
export const workspacePrefix = 'tsbuild-';

/** Deletes the containers, mounts and files of the workspace `dir`. */
export async function sweepWorkspace(dir: string): Promise<void> {
  await deleteLeftoverContainers(dir);
  await unmountAllUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * Sweeps the workspace `name` in `root` when it is one of ours (a directory of this user, named by
 * an owner) and its owner is gone. Concurrent sweepers of one workspace take turns through a lock
 * file; the first does the work. Returns why the sweep failed, or undefined.
 */
export async function sweepIfOwnerGone(root: string, name: string): Promise<string | undefined> {
  const owner = name.slice(workspacePrefix.length);
  if (!name.startsWith(workspacePrefix) || !isOwnedName(owner)) return undefined;
  const dir = path.join(root, name);
  // Whether the owner lives is known without a wait for this host's builds (see ownerIsGone), most
  // often the answer: looked at first, it spares the lstat.
  if (!(await ownerIsGone(dir, owner))) return undefined;
  const info = await lstatOrUndefined(dir);
  if (!info?.isDirectory() || info.uid !== process.getuid?.()) return undefined;
  const release = await tryLockFile(path.join(root, `.${name}.sweep-lock`));
  if (release === undefined) return undefined;
  try {
    if (await lstatOrUndefined(dir)) await sweepWorkspace(dir);
    return undefined;
  } catch (error) {
    return `cannot remove the workspace ${dir} left by a build that died: ${(error as Error).message}`;
  } finally {
    await release();
  }
}

/** Sweeps every workspace in `root` whose owner is gone; returns the failures, one line each. */
export async function sweepDeadWorkspaces(root: string): Promise<string[]> {
  const failures: string[] = [];
  for (const name of await readdirIfExists(root)) {
    const failure = await sweepIfOwnerGone(root, name);
    if (failure !== undefined) failures.push(failure);
  }
  return failures;
}
