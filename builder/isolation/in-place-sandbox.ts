import { applyLayers } from '../rootfs/apply-layers.js';
import type { ImageLayer } from '../model/image-layer.js';
import type { RootfsPreparer } from '../exec/stage-run.js';
import type { Workspace } from '../workspace/workspace.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import type { PlannedStage } from '../model/plan.js';
import { InPlaceRoot } from '../rootfs/in-place.js';
import { InPlaceBackend } from './in-place.js';
import { stashNodeRuntime } from './node-runtime.js';
import type { IsolationBackend } from './backend.js';

/** Where an in-place build keeps its scratch space: a dedicated directory, not `/tmp`, which RUN steps often empty. */
export const inPlaceWorkRoot = '/.tsbuild';

export interface InPlaceSandbox {
  readonly backend: IsolationBackend;
  /** Why the build runs in place, for `--progress plain`. */
  readonly reason: string;
  /** RUN steps get `/`; other steps' rootfs is unpacked into the workspace once a stage holds `/`. */
  readonly prepare: RootfsPreparer;
}

/**
 * `--isolation none`: each stage that runs a step takes over this container's root filesystem in
 * turn, as kaniko does, keeping `protectedPaths` (the build's own files) and every mount. A stage
 * that only needs files gets `/` while no stage holds it and it will run steps (saving a second
 * unpack), and its layers unpacked into the workspace otherwise. Whether building in place is
 * allowed here is for `selectIsolation` to say; `reason` is what it said.
 */
export async function inPlaceSandbox(options: {
  readonly protectedPaths: readonly string[];
  readonly reason: string;
  readonly workspace: Workspace;
  /** A protected directory of the build's own (in its workspace) that keeps a copy of node and its libraries. */
  readonly runtimeDir: string;
}): Promise<InPlaceSandbox> {
  // Before the first claim replaces `/` and, with it, the libraries node was started with.
  const node = await stashNodeRuntime(options.runtimeDir);
  const root = new InPlaceRoot(options.protectedPaths);
  const runsSteps = (stage: PlannedStage | undefined): boolean => stage?.steps.some((step) => step.kind === 'run') ?? false;
  return {
    backend: new InPlaceBackend({ protectedPaths: options.protectedPaths, node }),
    reason: options.reason,
    prepare: async (layers, stage, purpose) => {
      if (purpose === 'run' || (root.unclaimed && runsSteps(stage))) return root.claim(layers);
      return { ...(await unpackInWorkspace(layers, options.workspace)), canRun: false };
    },
  };
}

/**
 * The rootfs of a stage that does not hold `/`: its layers unpacked into the workspace by this
 * process. The shared rootfs cache is not used: it copies trees with `cp` and flushes with `sync`,
 * which once `/` is replaced would be the image's own tools, if it has any.
 */
async function unpackInWorkspace(layers: readonly ImageLayer[], workspace: Workspace): Promise<PreparedRootfs> {
  const dir = await workspace.newDir('rootfs');
  await applyLayers(dir, layers);
  return { dir, release: async () => undefined };
}
