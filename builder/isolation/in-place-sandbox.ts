import { TsbuildError } from '../../layers/errors.js';
import type { RootfsPreparer } from '../exec/stage-run.js';
import type { Workspace } from '../exec/workspace.js';
import { inContainer, inPlacePreparer } from '../rootfs/in-place.js';
import { InPlaceBackend } from './in-place.js';
import type { SelectedBackend } from './select.js';

/** Where an in-place build keeps its scratch space: a dedicated directory, not `/tmp`, which RUN steps often empty. */
export const inPlaceWorkRoot = '/.tsbuild';

export interface InPlaceSandbox extends SelectedBackend {
  /** Stages with RUN steps get `/`; the others are prepared by `fallback`. */
  readonly prepare: RootfsPreparer;
}

/**
 * `--isolation none`: the stage with RUN steps takes over this container's root filesystem, as
 * kaniko does, keeping `protectedPaths` (the build's own files) and every mount. Refused outside
 * a container unless `force`.
 */
export async function inPlaceSandbox(options: {
  readonly workspace: Workspace;
  readonly protectedPaths: readonly string[];
  readonly force: boolean;
  readonly fallback: RootfsPreparer;
}): Promise<InPlaceSandbox> {
  if (!options.force && !(await inContainer())) {
    throw new TsbuildError(
      'ISOLATION_UNAVAILABLE',
      '--isolation=none replaces the root filesystem: run it only in a disposable container, or pass --force-in-place',
    );
  }
  const inPlace = inPlacePreparer({ protectedPaths: options.protectedPaths, workspace: options.workspace, force: true });
  return {
    backend: new InPlaceBackend({ protectedPaths: options.protectedPaths }),
    reason: options.force ? '--isolation=none with --force-in-place' : 'in place on this container\'s root filesystem',
    prepare: (layers, stage) => (stage?.steps.some((step) => step.kind === 'run') ? inPlace(layers) : options.fallback(layers)),
  };
}
