import type { Compression } from '../../layers/compression.js';
import type { LayerEntry } from '../../layers/entry.js';
import { atSourceLine, TsbuildError } from '../../layers/errors.js';
import type { HistoryEntry } from '../../layers/types.js';
import { writeLayer } from '../../layers/write-layer.js';
import type { Readable } from 'node:stream';
import type { SourceTree } from '../fs/source-tree.js';
import type { CopyStep, PlannedStage, PlannedStep, PlatformPlan, RunStep, StageBase } from '../model/plan.js';
import type { ResolvedImage } from '../model/sources.js';
import { bindSourcesChecksum, selectBindSources, type BindSource } from '../run/bind-sources.js';
import type { ProgressListener } from '../progress.js';
import type { IsolationBackend } from '../isolation/backend.js';
import { runStepEntries } from '../run/run-step.js';
import { copySourceEntries, copyStepEntries, selectCopySources, type CopyContext } from './copy-step.js';
import { linkSourcesOf, type SelectedSource } from './copy-entries.js';
import type { StepParent } from '../cache/cache-key.js';
import { contentChecksum, type ContentChecksum } from '../cache/content-checksum.js';
import type { StepCache } from '../cache/step-cache.js';
import { fileLayer, type ImageLayer } from '../model/image-layer.js';
import { baseImageLayers } from '../rootfs/base-image-layers.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import { StageRun, type RootfsPreparer } from './stage-run.js';
import { workdirEntries } from './workdir-step.js';
import { fillHistoryTimes, imageCreated, stepCreated } from './history-times.js';
import type { Workspace } from '../workspace/workspace.js';

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
  /** The build cache; every step runs when absent. */
  readonly cache?: StepCache;
  /** The longest a RUN step may take, in seconds. */
  readonly runTimeoutSeconds?: number;
  /** Where `RUN --mount=type=cache` directories persist between builds. */
  readonly runCacheDir: string;
  /** Secret contents by id, for `RUN --mount=type=secret`. */
  readonly secrets: ReadonlyMap<string, Buffer>;
  /** SSH agent sockets by id, for `RUN --mount=type=ssh`. */
  readonly sshAgents: ReadonlyMap<string, string>;
  /** The caller's environment: what `ADD` of a URL or a git repository may read. */
  readonly env: NodeJS.ProcessEnv;
}

/** The image a platform's target stage produced. */
export interface BuiltImage {
  readonly stage: PlannedStage;
  readonly layers: readonly ImageLayer[];
  readonly history: readonly HistoryEntry[];
  /** The image's `created`: its last history entry's time; undefined when no entry has one. */
  readonly created?: string;
}

/** Runs every stage of a platform plan and returns the target stage's image. */
export async function executePlan(plan: PlatformPlan, options: ExecuteOptions, stepCounter: { next: number }): Promise<BuiltImage> {
  const runs = new Map<number, StageRun>();
  const images = new ImageRootfsCache(options.prepareRootfs);
  const now = options.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  try {
    for (const stage of plan.stages) {
      const run = new StageRun(stage, baseLayers(stage.base, runs), baseHistory(stage.base, runs), options.prepareRootfs, cacheBase(stage.base, runs));
      runs.set(stage.index, run);
      const label = stage.name ?? `stage-${stage.index}`;
      for (const [i, step] of stage.steps.entries()) {
        if (options.signal?.aborted) throw new TsbuildError('INTERRUPTED', 'build interrupted');
        const id = ++stepCounter.next;
        const started = Date.now();
        options.progress({ kind: 'step-start', step: id, name: `[${label} ${i + 1}/${stage.steps.length}] ${step.createdBy}` });
        const context: StepContext = { ...options, now, runs, imageRootfs: (name, image) => images.rootfs(name, image), stepId: id };
        const layersBefore = run.layers.length;
        await atSourceLine(step.location.file, step.location.startLine, () => runOrReuse(step, i, run, context));
        const layerBytes = run.layers.slice(layersBefore).reduce((sum, layer) => sum + layer.descriptor.size, 0);
        options.progress({ kind: 'step-done', step: id, seconds: (Date.now() - started) / 1000, layerBytes });
      }
      await run.endSession();
    }
    const target = runs.get(plan.targetIndex)!;
    const history = fillHistoryTimes(target.history);
    const created = imageCreated(history);
    return { stage: target.stage, layers: target.layers, history, ...(created !== undefined ? { created } : {}) };
  } finally {
    for (const run of runs.values()) await run.release();
    await images.release();
  }
}

interface StepContext extends ExecuteOptions {
  readonly now: number;
  readonly runs: ReadonlyMap<number, StageRun>;
  readonly imageRootfs: (contextName: string, image: ResolvedImage) => Promise<string>;
  readonly stepId: number;
}

/**
 * What a step made: a layer, and whether the stage's rootfs already holds its changes: made there
 * (true, a RUN step's), unpacked there as the layer was written ('unpacked'), or not yet (false).
 */
interface StepOutcome {
  readonly layer?: ImageLayer;
  readonly inRootfs: boolean | 'unpacked';
}

/** What a step reads from outside its stage, selected once for both its cache key and its execution. */
interface StepSources {
  readonly copy: () => Promise<readonly SelectedSource[]>;
  readonly binds: () => Promise<readonly BindSource[]>;
}

async function executeStep(step: Exclude<PlannedStep, { kind: 'metadata' }>, run: StageRun, ctx: StepContext, sources: StepSources): Promise<StepOutcome> {
  switch (step.kind) {
    case 'run': {
      if (!ctx.isolation) throw new TsbuildError('INTERNAL', 'RUN step without an isolation backend');
      const entries = await runStepEntries(step, run, {
        backend: ctx.isolation,
        workspace: ctx.workspace,
        mounts: { cacheDir: ctx.runCacheDir, secrets: ctx.secrets, sshAgents: ctx.sshAgents, bindSources: await sources.binds() },
        output: (stream, text) => ctx.progress({ kind: 'step-output', step: ctx.stepId, stream, text }),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
        ...(ctx.runTimeoutSeconds !== undefined ? { timeoutSeconds: ctx.runTimeoutSeconds } : {}),
      });
      return { layer: await layerFrom(entries, ctx), inRootfs: true };
    }
    case 'workdir': {
      return { layer: await layerFrom(await workdirEntries(step, run, ctx.now), ctx), inRootfs: false };
    }
    case 'copy': {
      const entries = await copyStepEntries(step, await sources.copy(), run, copyContext(ctx));
      // Unpacked while it is compressed, from the same bytes, rather than decompressed again afterwards.
      const { layer, unpacked } = await run.writeUnpacked((unpack) => layerFrom(entries, ctx, unpack), linkSourcesOf(entries));
      return { layer, inRootfs: unpacked ? 'unpacked' : false };
    }
  }
}

function copyContext(ctx: StepContext): CopyContext {
  return {
    workspace: ctx.workspace,
    contextTree: ctx.contextTree,
    now: ctx.now,
    stageRun: (index) => ctx.runs.get(index)!,
    imageRootfs: ctx.imageRootfs,
    env: ctx.env,
  };
}

/** Records a step's layer (or its absence) in the stage, applying it to the rootfs when that is still needed. */
async function recordStep(run: StageRun, layer: ImageLayer | null | undefined, inRootfs: StepOutcome['inRootfs'], history: HistoryEntry): Promise<void> {
  if (!layer) run.recordMetadata(history);
  else if (inRootfs === 'unpacked') run.recordUnpackedLayer(layer, history);
  else if (inRootfs) run.recordLayer(layer, history);
  else await run.addLayer(layer, history);
}

/**
 * Runs one step, or reuses its cached result: the cache key covers the parent step, the step's
 * expanded parameters, the platform, the variables it sees, the content COPY/ADD reads or RUN
 * bind-mounts, and how layers are written.
 */
async function runOrReuse(step: PlannedStep, stepIndex: number, run: StageRun, ctx: StepContext): Promise<void> {
  // Dated as BuildKit dates it: see history-times.ts.
  const history = (made?: string): HistoryEntry => {
    const created = stepCreated(made, ctx.sourceDateEpoch);
    return { ...(created !== undefined ? { created } : {}), created_by: step.createdBy };
  };
  if (step.kind === 'metadata') {
    run.recordMetadata(history());
    return;
  }
  // Only a RUN step may find the stage's shared sandbox still in the rootfs (see run-step.ts).
  if (step.kind !== 'run') await run.endSession();
  let selected: Promise<readonly SelectedSource[]> | undefined;
  let bound: Promise<readonly BindSource[]> | undefined;
  const sources: StepSources = {
    copy: () => (selected ??= selectCopySources(step as CopyStep, copyContext(ctx))),
    binds: () => (bound ??= selectBindSources((step as RunStep).mounts, copyContext(ctx))),
  };
  const content = ctx.cache ? await stepContent(step, sources) : undefined;
  const probe = ctx.cache
    ? await ctx.cache.probe({
        parent: run.cacheParent,
        step,
        platform: run.stage.platform,
        ...(content ? { content } : {}),
        stage: run.stage,
        stepIndex,
        layerFormat: { compression: ctx.compression, sourceDateEpoch: ctx.sourceDateEpoch ?? null },
      })
    : undefined;
  if (probe?.hit) {
    ctx.progress({ kind: 'step-cache', step: ctx.stepId, cached: true, summary: 'CACHED', differences: [] });
    await run.endSession();
    await recordStep(run, probe.hit.layer, false, history(probe.hit.layer ? probe.hit.created : undefined));
    run.cacheParent = { kind: 'step', key: probe.key };
    return;
  }
  if (probe?.miss) ctx.progress({ kind: 'step-cache', step: ctx.stepId, cached: false, summary: probe.miss.summary, differences: probe.miss.differences });
  const outcome = await executeStep(step, run, ctx, sources);
  const made = new Date().toISOString();
  await recordStep(run, outcome.layer, outcome.inRootfs, history(outcome.layer ? made : undefined));
  if (probe) {
    await probe.remember(outcome.layer, step.createdBy, made);
    run.cacheParent = { kind: 'step', key: probe.key };
  }
}

/** The checksum of what a step reads from outside its stage, for its cache key: COPY/ADD sources, RUN bind mounts. */
async function stepContent(step: Exclude<PlannedStep, { kind: 'metadata' }>, sources: StepSources): Promise<ContentChecksum | undefined> {
  if (step.kind === 'copy') return contentChecksum(await copySourceEntries(step, await sources.copy()));
  if (step.kind === 'run') return bindSourcesChecksum(await sources.binds());
  return undefined;
}

async function layerFrom(entries: LayerEntry[], ctx: StepContext, alsoConsume?: (tar: Readable) => Promise<unknown>): Promise<ImageLayer> {
  const layout = ctx.workspace.layout;
  const result = await writeLayer(entries, layout, {
    compression: ctx.compression,
    ...(alsoConsume ? { alsoConsume } : {}),
    ...(ctx.compressionLevel !== undefined ? { level: ctx.compressionLevel } : {}),
    ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
  });
  return fileLayer(result.descriptor, result.diffId, layout.path(result.descriptor.digest));
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
  return baseImageLayers(image.image, image.layers, diffIds);
}


/** Where a stage's cache key chain starts: scratch, the base image's manifest, or the base stage's last step. */
function cacheBase(base: StageBase, runs: ReadonlyMap<number, StageRun>): StepParent {
  if (base.kind === 'scratch') return { kind: 'scratch' };
  if (base.kind === 'stage') return runs.get(base.index)!.cacheParent;
  return { kind: 'image', digest: base.image.manifestDigest };
}

function baseHistory(base: StageBase, runs: ReadonlyMap<number, StageRun>): readonly HistoryEntry[] {
  if (base.kind === 'scratch') return [];
  if (base.kind === 'stage') return runs.get(base.index)!.history;
  return base.image.config.history ?? [];
}

