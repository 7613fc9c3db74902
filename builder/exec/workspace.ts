import { lstat, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { ownedName } from '../cache/local-store-owners.js';
import { defaultCacheDir } from '../rootfs/rootfs-cache.js';
import { sweepDeadWorkspaces, sweepWorkspace, workspacePrefix } from './workspace-sweep.js';
import { startWatchdog } from './workspace-watchdog.js';

/** Where workspaces live unless the build names another parent: `<cache dir>/workspaces`, private to this user. */
export function defaultWorkspaceRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(defaultCacheDir(env), 'workspaces');
}

/**
 * The build's own scratch space: a work OCI layout for the blobs it writes, root filesystems
 * of stages, and temp files. Removed when the build ends, whatever the outcome: its containers,
 * then its mounts, then its files.
 *
 * Its name carries its owner (this process, see local-store-owners.ts). Creating one first sweeps
 * the workspaces in the same parent whose owner is gone, and a watchdog process sweeps this one
 * should the build be killed outright (see workspace-watchdog.ts).
 */
export class Workspace {
  private counter = 0;

  private constructor(
    readonly dir: string,
    readonly layout: OciLayout,
    /** Why some dead build's workspace could not be swept, one line each. */
    readonly sweepFailures: readonly string[],
    private readonly stopWatchdog: () => void,
  ) {}

  /** A new workspace in `parent`, by default `defaultWorkspaceRoot()`. */
  static async create(parent?: string): Promise<Workspace> {
    const root = parent ?? defaultWorkspaceRoot();
    if (parent === undefined) await ensurePrivateDir(root);
    const sweepFailures = await sweepDeadWorkspaces(root);
    const name = workspacePrefix + ownedName();
    const dir = path.join(root, name);
    await mkdir(dir, { mode: 0o700 });
    let stopWatchdog: (() => void) | undefined;
    try {
      stopWatchdog = await startWatchdog(root, name);
      const layout = await OciLayout.open(path.join(dir, 'layout'), { create: true });
      return new Workspace(dir, layout, sweepFailures, stopWatchdog);
    } catch (error) {
      stopWatchdog?.();
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** A new empty directory for `purpose` (e.g. `rootfs`), unique within the build. */
  async newDir(purpose: string): Promise<string> {
    const dir = path.join(this.dir, `${purpose}-${++this.counter}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async remove(): Promise<void> {
    this.stopWatchdog();
    await sweepWorkspace(this.dir);
  }
}

/** Makes `dir` if needed and checks that no other user can have planted or changed it. */
async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const info = await lstat(dir);
  if (!info.isDirectory() || info.uid !== process.getuid?.() || (info.mode & 0o022) !== 0) {
    throw new TsbuildError('WORKSPACE', `${dir} must be a directory of this user that no one else may write to`);
  }
}
