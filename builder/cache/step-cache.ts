import type { Digest, Platform } from '../../layers/types.js';
import type { ImageLayer } from '../exec/image-layer.js';
import type { PlannedStage } from '../plan/plan-types.js';
import { sha256Digest } from '../../layers/digest.js';
import { cacheKey, canonicalJson, describeStepInputs, type CacheableStep, type StepParent } from './cache-key.js';
import type { ContentChecksum } from './content-checksum.js';
import { explainMiss, type MissExplanation } from './explain.js';
import type { LocalCacheStore } from './local-store.js';

/** What the executor needs to know about a step before running it. */
export interface CacheProbe {
  readonly key: Digest;
  /** The cached layer, or `null` for a cached step that made no layer; undefined on a miss. */
  readonly hit?: { readonly layer: ImageLayer | null };
  /** Why the step missed. */
  readonly miss?: MissExplanation;
  /** Stores what the step made, after a miss. */
  remember(layer: ImageLayer | undefined, createdBy: string): Promise<void>;
}

export interface StepCacheOptions {
  readonly store: LocalCacheStore;
  /** `--no-cache`: run every step; results are still stored. */
  readonly disabled: boolean;
  /** `--no-cache-filter`: stages (by name or index) whose steps always run. */
  readonly disabledStages: ReadonlySet<string>;
  /** Identifies the build's steps from run to run, e.g. the Dockerfile path. */
  readonly buildIdentity: string;
}

/** Looks steps up in the build cache and remembers their results. */
export class StepCache {
  constructor(private readonly options: StepCacheOptions) {}

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
    const remember = async (layer: ImageLayer | undefined, createdBy: string): Promise<void> => {
      const record = {
        version: 1 as const,
        ...(layer ? { layer: { descriptor: layer.descriptor, diffId: layer.diffId } } : {}),
        history: { created_by: createdBy, ...(layer ? {} : { empty_layer: true }) },
        inputs,
        createdAt: new Date().toISOString(),
      };
      await store.put(key, record, layer?.blobPath);
      await store.recordInputs(identity, inputs);
    };
    const bypass = this.options.disabled || this.options.disabledStages.has(input.stage.name ?? '') || this.options.disabledStages.has(String(input.stage.index));
    const record = bypass ? undefined : await store.get(key);
    if (record) {
      await store.recordInputs(identity, inputs);
      const layer = record.layer ? { descriptor: record.layer.descriptor, diffId: record.layer.diffId, blobPath: store.blobPath(record.layer.descriptor.digest) } : null;
      return { key, hit: { layer }, remember };
    }
    const miss = bypass ? { summary: '--no-cache', differences: ['--no-cache'] } : explainMiss(await store.lastInputs(identity), inputs);
    return { key, miss, remember };
  }
}
