import path from 'node:path';
import type { Compression } from '../../layers/compression.js';
import type { LayerEntry } from '../../layers/entry.js';
import { atSourceLine, TsbuildError } from '../../layers/errors.js';
import type { HistoryEntry } from '../../layers/types.js';
import { writeLayer } from '../../layers/write-layer.js';
import type { SourceTree } from '../fs/source-tree.js';
import type { PlannedStage, PlannedStep, PlatformPlan, ResolvedImage, StageBase } from '../plan/plan-types.js';
import type { ProgressListener } from '../progress.js';
import type { IsolationBackend } from '../isolation/backend.js';
import { runStepEntries } from '../run/run-step.js';
import { copyStepEntries } from './copy-step.js';
import type { ImageLayer } from './image-layer.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import { StageRun, type RootfsPreparer } from './stage-run.js';
import { workdirEntries } from './workdir-step.js';
import type { Workspace } from './workspace.js';

export interface ExecuteOptions {
  readonly workspace: Workspace;
  readonly prepareRootfs: RootfsPreparer;
  /** Runs RUN steps; required when the plan has any. */
  readonly isolation?: IsolationBackend;
  readonly contextTree: SourceTree;
  readonly compression: Compression;
  readonly compressionLevel?: number;
  /** Seconds since the epoch: clamps file times and dates the image. */
  readonly sourceDateEpoch?: number;
  readonly progress: ProgressListener;
  readonly signal?: AbortSignal;
  /** The longest a RUN step may take, in seconds. */
  readonly runTimeoutSeconds?: number;
}

/** The image a platform's target stage produced. */
export interface BuiltImage {
  readonly stage: PlannedStage;
  readonly layers: readonly ImageLayer[];
  readonly history: readonly HistoryEntry[];
}

/** Runs every stage of a platform plan and returns the target stage's image. */
export async function executePlan(plan: PlatformPlan, options: ExecuteOptions, stepCounter: { next: number }): Promise<BuiltImage> {
  const runs = new Map<number, StageRun>();
  const images = new ImageRootfsCache(options.prepareRootfs);
  const created = new Date((options.sourceDateEpoch ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
  const now = options.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  try {
    for (const stage of plan.stages) {
      const run = new StageRun(stage, baseLayers(stage.base, runs), baseHistory(stage.base, runs), options.prepareRootfs);
      runs.set(stage.index, run);
      const label = stage.name ?? `stage-${stage.index}`;
      for (const [i, step] of stage.steps.entries()) {
        if (options.signal?.aborted) throw new TsbuildError('INTERRUPTED', 'build interrupted');
        const id = ++stepCounter.next;
        const started = Date.now();
        options.progress({ kind: 'step-start', step: id, name: `[${label} ${i + 1}/${stage.steps.length}] ${step.createdBy}` });
        const context: StepContext = { ...options, created, now, runs, imageRootfs: (name, image) => images.rootfs(name, image), stepId: id };
        await atSourceLine(step.location.file, step.location.startLine, () => executeStep(step, run, context));
        options.progress({ kind: 'step-done', step: id, seconds: (Date.now() - started) / 1000 });
      }
    }
    const target = runs.get(plan.targetIndex)!;
    return { stage: target.stage, layers: target.layers, history: target.history };
  } finally {
    for (const run of runs.values()) await run.release();
    await images.release();
  }
}

interface StepContext extends ExecuteOptions {
  readonly created: string;
  readonly now: number;
  readonly runs: ReadonlyMap<number, StageRun>;
  readonly imageRootfs: (contextName: string, image: ResolvedImage) => Promise<string>;
  readonly stepId: number;
}

async function executeStep(step: PlannedStep, run: StageRun, ctx: StepContext): Promise<void> {
  const history: HistoryEntry = { created: ctx.created, created_by: step.createdBy };
  switch (step.kind) {
    case 'metadata':
      run.recordMetadata(history);
      return;
    case 'run': {
      if (!ctx.isolation) throw new TsbuildError('INTERNAL', 'RUN step without an isolation backend');
      const entries = await runStepEntries(step, run, {
        backend: ctx.isolation,
        workspace: ctx.workspace,
        output: (stream, text) => ctx.progress({ kind: 'step-output', step: ctx.stepId, stream, text }),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(ctx.runTimeoutSeconds !== undefined ? { timeoutSeconds: ctx.runTimeoutSeconds } : {}),
      });
      run.recordLayer(await layerFrom(entries, ctx), history);
      return;
    }
    case 'workdir': {
      const entries = await workdirEntries(step, run, ctx.now);
      if (entries.length === 0) run.recordMetadata(history);
      else await run.addLayer(await layerFrom(entries, ctx), history);
      return;
    }
    case 'copy': {
      const entries = await copyStepEntries(step, run, {
        workspace: ctx.workspace,
        contextTree: ctx.contextTree,
        now: ctx.now,
        stageRun: (index) => ctx.runs.get(index)!,
        imageRootfs: ctx.imageRootfs,
      });
      await run.addLayer(await layerFrom(entries, ctx), history);
      return;
    }
  }
}

async function layerFrom(entries: LayerEntry[], ctx: StepContext): Promise<ImageLayer> {
  const layout = ctx.workspace.layout;
  const result = await writeLayer(entries, layout, {
    compression: ctx.compression,
    ...(ctx.compressionLevel !== undefined ? { level: ctx.compressionLevel } : {}),
    ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
  });
  return { descriptor: result.descriptor, diffId: result.diffId, blobPath: layout.path(result.descriptor.digest) };
}

function baseLayers(base: StageBase, runs: ReadonlyMap<number, StageRun>): readonly ImageLayer[] {
  if (base.kind === 'scratch') return [];
  if (base.kind === 'stage') return runs.get(base.index)!.layers;
  return imageLayers(base.contextName, base.image);
}

/** The root filesystems of images `COPY --from` names, each prepared once per build. */
class ImageRootfsCache {
  private readonly prepared = new Map<string, Promise<PreparedRootfs>>();

  constructor(private readonly prepare: RootfsPreparer) {}

  async rootfs(contextName: string, image: ResolvedImage): Promise<string> {
    let rootfs = this.prepared.get(image.manifestDigest);
    if (!rootfs) {
      rootfs = this.prepare(imageLayers(contextName, image));
      this.prepared.set(image.manifestDigest, rootfs);
    }
    return (await rootfs).dir;
  }

  async release(): Promise<void> {
    for (const rootfs of this.prepared.values()) await (await rootfs.catch(() => undefined))?.release();
  }
}

/** An image's layers with their diff_ids and blob files in the layout it came from. */
function imageLayers(contextName: string, image: ResolvedImage): ImageLayer[] {
  const diffIds = image.config.rootfs.diff_ids;
  if (diffIds.length !== image.layers.length) {
    throw new TsbuildError('BAD_IMAGE', `image ${contextName}: ${image.layers.length} layers but ${diffIds.length} diff_ids`);
  }
  return image.layers.map((descriptor, i) => ({
    descriptor,
    diffId: diffIds[i]!,
    blobPath: path.join(image.layoutDir, 'blobs', 'sha256', descriptor.digest.slice('sha256:'.length)),
  }));
}


function baseHistory(base: StageBase, runs: ReadonlyMap<number, StageRun>): readonly HistoryEntry[] {
  if (base.kind === 'scratch') return [];
  if (base.kind === 'stage') return runs.get(base.index)!.history;
  return base.image.config.history ?? [];
}

