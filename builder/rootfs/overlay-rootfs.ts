import { rm } from 'node:fs/promises';
import type { Workspace } from '../workspace/workspace.js';
import { mountOverlay, overlayOptionsFit, unmountOverlay } from './overlay.js';

/** A directory made for the next upper directory of the mount, with overlayfs's work directory beside it. */
interface UpperPair {
  readonly upper: string;
  readonly work: string;
}

/**
 * A stage's root filesystem as an overlay mount whose stack can grow. Steps write to the upper
 * directory; a layer built elsewhere (a COPY's) can be unpacked into a directory of its own that
 * is then stacked read-only above everything the stage holds so far, the old upper directory
 * included, with a new empty upper directory for the steps after it. Nothing ever writes to a
 * stacked directory, so it may share inodes with the files it was made from.
 */
export class OverlayRootfs {
  private released: Promise<void> | undefined;

  private constructor(
    readonly dir: string,
    private readonly workspace: Workspace,
    /** The read-only directories, topmost first. */
    private lowerDirs: readonly string[],
    private current: UpperPair,
  ) {}

  /** Mounts at `dir` an overlay of `lowerDir` with a new upper directory in `workspace`. */
  static async mount(dir: string, lowerDir: string, workspace: Workspace): Promise<OverlayRootfs> {
    const pair = await newUpper(workspace);
    await mountOverlay([lowerDir], pair.upper, pair.work, dir);
    return new OverlayRootfs(dir, workspace, [lowerDir], pair);
  }

  /** The only place the mount's changes land: see `PreparedRootfs.upperDir`. */
  get upperDir(): string {
    return this.current.upper;
  }

  /**
   * Lets `fill` write a layer into a new directory and stacks that directory above the mount's
   * current contents; resolves undefined, without calling `fill`, when the mount options cannot
   * take another directory. Nothing may use the mount meanwhile.
   */
  async stackLayer<T>(fill: (dir: string) => Promise<T>): Promise<{ readonly value: T } | undefined> {
    const layerDir = await this.workspace.newDir('layer');
    const next = await newUpper(this.workspace);
    const lowerDirs = [layerDir, this.current.upper, ...this.lowerDirs];
    if (!overlayOptionsFit(lowerDirs, next.upper, next.work)) {
      await Promise.all([layerDir, next.upper, next.work].map((dir) => rm(dir, { recursive: true, force: true })));
      return undefined;
    }
    const value = await fill(layerDir);
    await unmountOverlay(this.dir);
    await mountOverlay(lowerDirs, next.upper, next.work, this.dir);
    this.lowerDirs = lowerDirs;
    this.current = next;
    return { value };
  }

  /** Unmounts the overlay; safe to call more than once. The workspace removal deletes the directories. */
  release(): Promise<void> {
    this.released ??= unmountOverlay(this.dir).catch((error: unknown) => {
      this.released = undefined; // let a later call try again
      throw error;
    });
    return this.released;
  }
}

async function newUpper(workspace: Workspace): Promise<UpperPair> {
  return { upper: await workspace.newDir('upper'), work: await workspace.newDir('overlay-work') };
}
