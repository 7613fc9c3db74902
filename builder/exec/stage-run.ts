import type { HistoryEntry } from '../../layers/types.js';
import type { PlannedStage } from '../plan/plan-types.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import type { StepParent } from '../cache/cache-key.js';
import type { ImageLayer } from './image-layer.js';
import { applyLayers } from './rootfs.js';

/** Unpacks a layer chain into a root filesystem, for `stage` when a stage asks. */
export type RootfsPreparer = (layers: readonly ImageLayer[], stage?: PlannedStage) => Promise<PreparedRootfs>;

/**
 * A stage while it executes: its layers and history so far, and its root filesystem, which is
 * only prepared when a step needs to look at files.
 */
export class StageRun {
  private preparedPromise: Promise<PreparedRootfs> | undefined;
  private readonly layerList: ImageLayer[];
  private readonly historyList: HistoryEntry[];

  /** The cache key chain so far: where the next step's key starts. */
  cacheParent: StepParent;

  constructor(
    readonly stage: PlannedStage,
    baseLayers: readonly ImageLayer[],
    baseHistory: readonly HistoryEntry[],
    private readonly prepare: RootfsPreparer,
    cacheBase: StepParent,
  ) {
    this.cacheParent = cacheBase;
    this.layerList = [...baseLayers];
    this.historyList = [...baseHistory];
  }

  get layers(): readonly ImageLayer[] {
    return this.layerList;
  }

  get history(): readonly HistoryEntry[] {
    return this.historyList;
  }

  /** The stage's root filesystem as of now, prepared on first use. */
  prepared(): Promise<PreparedRootfs> {
    this.preparedPromise ??= this.prepare([...this.layerList], this.stage);
    return this.preparedPromise;
  }

  async rootfs(): Promise<string> {
    return (await this.prepared()).dir;
  }

  recordMetadata(entry: HistoryEntry): void {
    this.historyList.push({ ...entry, empty_layer: true });
  }

  /** Appends a layer built from outside the rootfs, applying it to the rootfs if that is prepared. */
  async addLayer(layer: ImageLayer, entry: HistoryEntry): Promise<void> {
    if (this.preparedPromise) {
      const prepared = await this.preparedPromise;
      await (prepared.applyLayers ? prepared.applyLayers([layer]) : applyLayers(prepared.dir, [layer]));
    }
    this.recordLayer(layer, entry);
  }

  /** Appends a layer whose changes the rootfs already holds (a RUN step's). */
  recordLayer(layer: ImageLayer, entry: HistoryEntry): void {
    this.layerList.push(layer);
    this.historyList.push(entry);
  }

  /** Releases the prepared rootfs, if any. */
  async release(): Promise<void> {
    const prepared = this.preparedPromise;
    this.preparedPromise = undefined;
    if (prepared) await (await prepared.catch(() => undefined))?.release();
  }
}
