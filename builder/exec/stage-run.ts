import type { Readable } from 'node:stream';
import type { HistoryEntry } from '../../layers/types.js';
import type { PlannedStage } from '../model/plan.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import type { TreeSnapshot } from '../snapshot/scan.js';
import type { StepParent } from '../cache/cache-key.js';
import type { ImageLayer } from '../model/image-layer.js';
import { applyLayers } from '../rootfs/apply-layers.js';
import { applyLayer } from '../../layers/apply-layer.js';
import type { StepSession } from '../run/step-session.js';

/** What a step needs a rootfs for: its files only, or running processes in it too. */
export type RootfsPurpose = 'files' | 'run';

/** Unpacks a layer chain into a root filesystem, for `stage` when a stage asks; one it can run processes in for `run`. */
export type RootfsPreparer = (layers: readonly ImageLayer[], stage?: PlannedStage, purpose?: RootfsPurpose) => Promise<PreparedRootfs>;

/**
 * A stage while it executes: its layers and history so far, and its root filesystem, which is
 * only prepared when a step needs to look at files.
 */
export class StageRun {
  private preparedPromise: Promise<PreparedRootfs> | undefined;
  private readonly layerList: ImageLayer[];
  private readonly historyList: HistoryEntry[];

  /** The scan a RUN step took of its rootfs when it ended, while nothing else has changed that rootfs since. */
  private lastScan: { readonly rootfs: PreparedRootfs; readonly snapshot: TreeSnapshot } | undefined;

  /** The sandbox the stage's latest RUN steps shared, while it runs. */
  private openSession: StepSession | undefined;

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

  /**
   * The stage's root filesystem as of now, prepared on first use, and prepared again from the
   * stage's layers when the one at hand no longer serves: claimed by another stage, or not one
   * processes can run in when `purpose` is `run`.
   */
  async prepared(purpose: RootfsPurpose = 'files'): Promise<PreparedRootfs> {
    for (;;) {
      const promise = (this.preparedPromise ??= this.prepare([...this.layerList], this.stage, purpose));
      const current = await promise;
      if (current.holdsStage?.() !== false && (purpose === 'files' || current.canRun !== false)) return current;
      if (this.preparedPromise === promise) {
        this.preparedPromise = undefined;
        await current.release();
      }
    }
  }

  async rootfs(): Promise<string> {
    return (await this.prepared()).dir;
  }

  /** The running shared sandbox, if any (see step-session.ts). */
  get session(): StepSession | undefined {
    return this.openSession;
  }

  /** Keeps `session` as the stage's shared sandbox, to be ended by `endSession`. */
  startSession(session: StepSession): StepSession {
    this.openSession = session;
    return session;
  }

  /**
   * Stops the shared sandbox, if one runs, and removes its mount points from the rootfs: before any
   * step but a RUN that can share it touches the rootfs, and when the stage ends.
   */
  async endSession(): Promise<void> {
    const session = this.openSession;
    this.openSession = undefined;
    await session?.close();
  }

  recordMetadata(entry: HistoryEntry): void {
    this.historyList.push({ ...entry, empty_layer: true });
  }

  /** Keeps the scan a RUN step took of `rootfs` after its process ended, for the next RUN step to start from; undefined forgets it. */
  keepScan(rootfs: PreparedRootfs, snapshot: TreeSnapshot | undefined): void {
    this.lastScan = snapshot && { rootfs, snapshot };
  }

  /** The scan kept by `keepScan`, if `rootfs` is the one it was taken of and nothing has changed it since. */
  keptScan(rootfs: PreparedRootfs): TreeSnapshot | undefined {
    return this.lastScan?.rootfs === rootfs ? this.lastScan.snapshot : undefined;
  }

  /** Appends a layer built from outside the rootfs, applying it to the rootfs if that is prepared. */
  async addLayer(layer: ImageLayer, entry: HistoryEntry): Promise<void> {
    this.lastScan = undefined;
    if (this.preparedPromise) {
      const prepared = await this.preparedPromise;
      await (prepared.applyLayers ? prepared.applyLayers([layer]) : applyLayers(prepared.dir, [layer]));
    }
    this.recordLayer(layer, entry);
  }

  /**
   * Writes a layer built outside the rootfs with `write`, which gets an `unpack` that unpacks the
   * tar as it is written when the rootfs is prepared and takes plain tars: into a directory stacked
   * read-only on the rootfs where it can be (files of `linkSources` may be hard-linked there
   * instead of copied), otherwise into the rootfs itself. Says whether the layer was unpacked; it
   * is appended with `recordUnpackedLayer` or `addLayer` then.
   */
  async writeUnpacked(write: (unpack?: (tar: Readable) => Promise<unknown>) => Promise<ImageLayer>, linkSources: ReadonlyMap<string, string>): Promise<{ layer: ImageLayer; unpacked: boolean }> {
    const prepared = this.preparedPromise && (await this.preparedPromise);
    if (!prepared || prepared.applyLayers || prepared.holdsStage?.() === false) return { layer: await write(), unpacked: false };
    const stacked = await prepared.stackLayer?.((dir) => write((tar) => applyLayer(dir, tar, { linkSources })));
    return { layer: stacked ? stacked.value : await write((tar) => applyLayer(prepared.dir, tar)), unpacked: true };
  }

  /** Appends a layer that `writeUnpacked` unpacked while it was written. */
  recordUnpackedLayer(layer: ImageLayer, entry: HistoryEntry): void {
    this.lastScan = undefined;
    this.recordLayer(layer, entry);
  }

  /** Appends a layer whose changes the rootfs already holds (a RUN step's). */
  recordLayer(layer: ImageLayer, entry: HistoryEntry): void {
    this.layerList.push(layer);
    this.historyList.push(entry);
  }

  /** Releases the prepared rootfs, if any. */
  async release(): Promise<void> {
    await this.endSession().catch(() => undefined);
    const prepared = this.preparedPromise;
    this.preparedPromise = undefined;
    if (prepared) await (await prepared.catch(() => undefined))?.release();
  }
}
