import type { HistoryEntry } from '../../layers/types.js';
import type { PlannedStage } from '../plan/plan-types.js';
import type { ImageLayer } from './image-layer.js';
import { applyLayers } from './rootfs.js';
import type { Workspace } from './workspace.js';

/**
 * A stage while it executes: its layers and history so far, and its root filesystem, which is
 * only unpacked when a step needs to look at files.
 */
export class StageRun {
  private rootfsPromise: Promise<string> | undefined;
  private readonly layerList: ImageLayer[];
  private readonly historyList: HistoryEntry[];

  constructor(
    readonly stage: PlannedStage,
    baseLayers: readonly ImageLayer[],
    baseHistory: readonly HistoryEntry[],
    private readonly workspace: Workspace,
  ) {
    this.layerList = [...baseLayers];
    this.historyList = [...baseHistory];
  }

  get layers(): readonly ImageLayer[] {
    return this.layerList;
  }

  get history(): readonly HistoryEntry[] {
    return this.historyList;
  }

  /** The stage's root filesystem as of now, unpacked on first use. */
  rootfs(): Promise<string> {
    this.rootfsPromise ??= this.workspace.newDir('rootfs').then(async (dir) => {
      await applyLayers(dir, this.layerList);
      return dir;
    });
    return this.rootfsPromise;
  }

  recordMetadata(entry: HistoryEntry): void {
    this.historyList.push({ ...entry, empty_layer: true });
  }

  /** Appends a layer, and applies it to the root filesystem if that is already unpacked. */
  async addLayer(layer: ImageLayer, entry: HistoryEntry): Promise<void> {
    if (this.rootfsPromise) await applyLayers(await this.rootfsPromise, [layer]);
    this.layerList.push(layer);
    this.historyList.push(entry);
  }
}
