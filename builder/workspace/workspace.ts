import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { OciLayout } from '../../layers/oci-layout.js';
import { ownedName } from '../cache/local-store-owners.js';
import { sweepDeadWorkspaces, sweepWorkspace, workspacePrefix } from './workspace-sweep.js';
import { startWatchdog } from './workspace-watchdog.js';

/**
 * The build's own scratch space: a work OCI layout for the blobs it writes, root filesystems
 * of stages, and temp files. Removed when the build ends, whatever the outcome: its containers,
 * then its mounts, then its files.
 *
 * Its name carries its owner (this process, see local-store-owners.ts). Creating one first sweeps
 * the workspaces in the same parent whose owner is gone (those of this user only, found by that
 * name), and a watchdog process sweeps this one should the build be killed outright (see
 * workspace-watchdog.ts).
 */
export class Workspace {
  private counter = 0;

  private constructor(
    readonly dir: string,
    readonly layout: OciLayout,
    /** Why some dead build's workspace could not be swept, one line each. */
    readonly sweepFailures: readonly string[],
    private readonly stopWatchdog: () => Promise<void>,
  ) {}

  /**
   * A new workspace in `root`, by default the temp directory. The dead builds' workspaces are
   * swept, this one's watchdog starts and its layout is made at the same time: the sweep waits on
   * the thread pool and the watchdog on its process while the layout's few small files are made.
   */
  static async create(root: string = os.tmpdir()): Promise<Workspace> {
    const swept = sweepDeadWorkspaces(root);
    const name = workspacePrefix + ownedName();
    const dir = path.join(root, name);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      await swept.catch(() => undefined);
      throw error;
    }
    const [watchdog, layout, sweep] = await Promise.allSettled([
      startWatchdog(root, name),
      OciLayout.open(path.join(dir, 'layout'), { create: true, durable: false }),
      swept,
    ]);
    if (watchdog.status === 'fulfilled' && layout.status === 'fulfilled' && sweep.status === 'fulfilled') {
      return new Workspace(dir, layout.value, sweep.value, watchdog.value);
    }
    if (watchdog.status === 'fulfilled') await watchdog.value();
    await rm(dir, { recursive: true, force: true });
    throw [watchdog, layout, sweep].flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []))[0];
  }

  /** A new empty directory for `purpose` (e.g. `rootfs`), unique within the build. */
  async newDir(purpose: string): Promise<string> {
    const dir = path.join(this.dir, `${purpose}-${++this.counter}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** Removes the workspace; its watchdog, which has nothing to do while this process lives, stops meanwhile. */
  async remove(): Promise<void> {
    const [stopped, swept] = await Promise.allSettled([this.stopWatchdog(), sweepWorkspace(this.dir)]);
    if (swept.status === 'rejected') throw swept.reason;
    if (stopped.status === 'rejected') throw stopped.reason;
  }
}
