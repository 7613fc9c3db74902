import type { Digest, Platform } from '../../layers/types.js';
import { fileLayer, modelLayer, type ImageLayer } from '../model/image-layer.js';
import type { PlannedStage } from '../model/plan.js';
import { sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { canonicalJson } from '../../layers/canonical-json.js';
import { cacheKey, describeStepInputs, type CacheableStep, type StepParent } from './cache-key.js';
import type { ContentChecksum } from './content-checksum.js';
import { explainMiss, type MissExplanation } from './explain.js';
import type { CacheEntry, CacheStore } from './cache-store.js';
import type { LocalCacheStore } from './local-store.js';
import type { CacheRecord } from './local-store-record.js';

/** What the executor needs to know about a step before running it. */
export interface CacheProbe {
  readonly key: Digest;
  /** The cached layer, or `null` for a cached step that made no layer, and when it was made; undefined on a miss. */
  readonly hit?: { readonly layer: ImageLayer | null; readonly created: string };
  /** Why the step missed. */
  readonly miss?: MissExplanation;
  /**
   * Stores what the step made, after a miss, and when (RFC 3339; now when not given). `layer` must
   * be a file this build wrote and hashed as it wrote it (as writeLayer does): it is linked into the
   * cache with a size check only. The write goes on in the background (see StepCache.settle).
   */
  remember(layer: ImageLayer | undefined, createdBy: string, createdAt?: string): Promise<void>;
}

export interface StepCacheOptions {
  readonly store: LocalCacheStore;
  /** `--no-cache`: run every step; results are still stored. */
  readonly disabled: boolean;
  /** `--no-cache-filter`: stages (by name or index) whose steps always run. */
  readonly disabledStages: ReadonlySet<string>;
  /** Identifies the build's steps from run to run, e.g. the Dockerfile path. */
  readonly buildIdentity: string;
  /** `--cache-repo`: looked up on a local miss, and given every result computed after a miss. */
  readonly registry?: CacheStore;
  /** Told about problems that do not fail the build, such as an unreachable cache repository. */
  readonly onWarning?: (message: string) => void;
  /** Whether the cache repository is looked up and written (`--cache-from`, `--cache-to`); both when absent. */
  readonly registryUse?: { readonly lookups: boolean; readonly publishes: boolean };
  /** The stages whose steps are published to the cache repository (`mode=min`); all when absent. */
  readonly publishedStage?: (stage: PlannedStage) => boolean;
}

/** Looks steps up in the build cache and remembers their results. */
export class StepCache {
  /** Set once the cache repository failed a lookup (or a publish): it is not tried again in this build. */
  private registryLookups: boolean;
  private registryPublishes: boolean;
  /** Local writes of results still running, by step key. */
  private readonly storing = new Map<Digest, Promise<void>>();
  /** The first local write that failed (wrapped: anything may be thrown). */
  private storeFailure: { error: unknown } | undefined;

  constructor(private readonly options: StepCacheOptions) {
    this.registryLookups = options.registry !== undefined && (options.registryUse?.lookups ?? true);
    this.registryPublishes = options.registry !== undefined && (options.registryUse?.publishes ?? true);
  }

  async probe(input: {
    readonly parent: StepParent;
    readonly step: CacheableStep;
    readonly platform: Platform;
    readonly content?: ContentChecksum;
    readonly stage: PlannedStage;
    readonly stepIndex: number;
    /** How the layer is written: a cached layer in another format, or with other timestamps, is not reused. */
    readonly layerFormat: { readonly compression: string; readonly sourceDateEpoch: number | null };
  }): Promise<CacheProbe> {
    const keyInput = {
      parent: input.parent,
      step: input.step,
      platform: input.platform,
      ...(input.content ? { content: input.content } : {}),
      ...(input.step.kind === 'run' ? { argNames: new Set(input.step.argNames) } : {}),
    };
    const key = sha256Digest(canonicalJson({ step: cacheKey(keyInput), layer: input.layerFormat }));
    const inputs = {
      ...describeStepInputs(keyInput),
      'layer:compression': input.layerFormat.compression,
      'layer:source-date-epoch': String(input.layerFormat.sourceDateEpoch),
    };
    const identity = [this.options.buildIdentity, input.stage.name ?? String(input.stage.index), input.stepIndex, input.platform.os, input.platform.architecture, input.platform.variant ?? ''].join('|');
    const store = this.options.store;
    this.throwStoreFailure();
    await this.storing.get(key);
    const remember = async (layer: ImageLayer | undefined, createdBy: string, createdAt = new Date().toISOString()): Promise<void> => {
      const record: CacheRecord = {
        version: 1,
        ...(layer ? { layer: { descriptor: layer.descriptor, diffId: layer.diffId } } : {}),
        history: { created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
        inputs,
        createdAt,
      };
      const entry: CacheEntry = { record, ...(layer && { layer: modelLayer(layer) }) };
      // The step's layer is this build's own file, hashed as it was written.
      this.inBackground(key, Promise.all([store.put(key, entry, { layerHashed: true }), store.recordInputs(identity, inputs)]));
      if (this.options.publishedStage?.(input.stage) ?? true) await this.publish(key, entry);
    };
    const bypass = this.options.disabled || this.options.disabledStages.has(input.stage.name ?? '') || this.options.disabledStages.has(String(input.stage.index));
    // Read alongside the lookup, which it does not wait on: a miss is explained with them.
    const lastInputs = bypass ? undefined : store.lastInputs(identity);
    lastInputs?.catch(() => undefined);
    let record = bypass ? undefined : (await store.get(key))?.record;
    if (record === undefined && !bypass && (await this.fetch(key))) record = (await store.get(key))?.record;
    if (record) {
      this.inBackground(key, store.recordInputs(identity, inputs));
      const layer = record.layer ? fileLayer(record.layer.descriptor, record.layer.diffId, store.blobPath(record.layer.descriptor.digest)) : null;
      return { key, hit: { layer, created: record.createdAt }, remember };
    }
    const miss = bypass ? { summary: '--no-cache', differences: ['--no-cache'] } : explainMiss(await lastInputs, inputs);
    return { key, miss, remember };
  }

  /**
   * Waits for the local store's writes of this build's results, and throws the first that failed.
   * Call before the build ends: until then, a failed write is only reported at the next lookup.
   */
  async settle(): Promise<void> {
    await Promise.allSettled(this.storing.values());
    this.throwStoreFailure();
  }

  /**
   * Lets `write` (a result being stored locally) run while the build goes on: a lookup of the same
   * step waits for it, and the first failure is thrown by the next lookup or by `settle`.
   */
  private inBackground(key: Digest, write: Promise<unknown>): void {
    const done = write.then(
      () => undefined,
      (error: unknown) => {
        this.storeFailure ??= { error };
      },
    );
    const previous = this.storing.get(key);
    const tracked = previous === undefined ? done : Promise.all([previous, done]).then(() => undefined);
    this.storing.set(key, tracked);
    void tracked.then(() => {
      if (this.storing.get(key) === tracked) this.storing.delete(key);
    });
  }

  private throwStoreFailure(): void {
    if (this.storeFailure !== undefined) throw this.storeFailure.error;
  }

  /** Brings the entry for `key` from the cache repository into the local store; false on a miss or a failure. */
  private async fetch(key: Digest): Promise<boolean> {
    const registry = this.options.registry;
    if (registry === undefined || !this.registryLookups) return false;
    try {
      const entry = await registry.get(key);
      if (entry === undefined) return false;
      await this.options.store.put(key, entry);
      return true;
    } catch (error) {
      if (!(error instanceof TsbuildError)) throw error;
      this.registryLookups = false;
      this.options.onWarning?.(`cache repo ${registry.name}: ${error.message} (no more lookups in this build)`);
      return false;
    }
  }

  private async publish(key: Digest, entry: CacheEntry): Promise<void> {
    const registry = this.options.registry;
    if (registry === undefined || !this.registryPublishes) return;
    try {
      await registry.put(key, entry);
    } catch (error) {
      if (!(error instanceof TsbuildError)) throw error;
      this.registryPublishes = false;
      this.options.onWarning?.(`cache repo ${registry.name}: ${error.message} (nothing more is published in this build)`);
    }
  }
}
