import type { ImageLayer } from '../model/image-layer.js';
import type { Workspace } from '../workspace/workspace.js';
import { copyTree } from './copy-tree.js';
import { OverlayRootfs } from './overlay-rootfs.js';
import type { RootfsCache } from './rootfs-cache.js';

/** A stage's root filesystem, ready for steps to read and write. */
export interface PreparedRootfs {
  /** The tree steps read and write. */
  readonly dir: string;
  /**
   * Set when `dir` is an overlay: the only place its changes land. Deleted paths show there as
   * overlay whiteouts (0/0 character devices) and replaced directories carry the
   * `trusted.overlay.opaque` xattr (`user.overlay.opaque` inside a user namespace).
   */
  readonly upperDir?: string;
  /** Unmounts the overlay, if any; safe to call more than once. The workspace removal deletes the rest. */
  release(): Promise<void>;
  /** False once `dir` no longer holds the stage's files (an in-place root claimed by another stage). */
  holdsStage?(): boolean;
  /** False when the build's isolation backend cannot run processes in `dir`. */
  readonly canRun?: boolean;
  /** Root-relative paths a snapshot of `dir` must leave out (an in-place rootfs's protected paths). */
  readonly snapshotExclude?: (rel: string) => boolean;
  /** Applies layers built outside the rootfs; plain `applyLayers(dir, layers)` when absent. */
  applyLayers?(layers: readonly ImageLayer[]): Promise<void>;
  /**
   * Set when `dir` is an overlay whose stack can grow: lets `fill` write a layer into a new
   * directory, stacks it read-only above the stage's files so far, and sends later changes to a
   * new `upperDir`. Resolves undefined, without calling `fill`, when the mount cannot take another
   * directory. Nothing may use `dir` meanwhile.
   */
  stackLayer?<T>(fill: (dir: string) => Promise<T>): Promise<{ readonly value: T } | undefined>;
}

export interface PrepareOptions {
  /**
   * `overlay` fails when no overlay can be mounted, `copy` always copies, `auto` (the default)
   * mounts an overlay where that works and copies otherwise.
   */
  mode?: 'auto' | 'overlay' | 'copy';
  /** The cache of unpacked layer stacks. */
  cache: RootfsCache;
  /** Told what unpacking the layers left out (device nodes a user namespace may not create). */
  onNote?: (message: string) => void;
}

/**
 * Gives a build a private, writable root filesystem holding `layers`, from the shared rootfs cache:
 * an overlay over the cached stack when overlay mounts work, otherwise a copy of it (`cp -a`, with
 * reflinks where the filesystem has them) in the workspace. The cached stack is never modified.
 *
 * The caller must release it even when the build fails, and before removing the workspace:
 *
 *     const rootfs = await prepareRootfs(layers, workspace, { cache });
 *     try {
 *       // ... steps read and write rootfs.dir ...
 *     } finally {
 *       await rootfs.release();
 *     }
 *
 * An overlay left mounted by a process that died holds nothing but the workspace's own
 * directories; it can be removed with `umount`.
 */
/** False once an overlay mount failed in this process in `auto` mode: later stages copy at once. */
let overlayMountsWork = true;

export async function prepareRootfs(layers: readonly ImageLayer[], workspace: Workspace, options: PrepareOptions): Promise<PreparedRootfs> {
  const mode = options.mode ?? 'auto';
  const dir = await workspace.newDir('rootfs');
  // No layers: an empty directory is the whole filesystem.
  if (layers.length === 0) return { dir, release: async () => undefined };

  const { cache } = options;
  const lower = await cache.unpackedChain(layers, options.onNote);
  if (mode === 'overlay' || (mode === 'auto' && overlayMountsWork)) {
    try {
      return await OverlayRootfs.mount(dir, lower, workspace);
    } catch (error) {
      if (mode === 'overlay') throw error;
      // No overlays here (no privilege, an old kernel, a cache filesystem that cannot be a lower
      // directory): the copy below gives the same rootfs. The mount itself is the probe.
      overlayMountsWork = false;
    }
  }
  await copyTree(lower, dir);
  return { dir, release: async () => undefined };
}
