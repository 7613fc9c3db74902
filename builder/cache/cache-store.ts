import { TsbuildError } from '../../layers/errors.js';
import type { Layer } from '../../layers/image.js';
import type { Digest } from '../../layers/types.js';
import type { CacheRecord } from './local-store-record.js';

/** One step's cached result: its record and, when the step made one, its layer. */
export interface CacheEntry {
  readonly record: CacheRecord;
  /** The step's layer: present exactly when `record.layer` is. */
  readonly layer?: Layer;
}

/**
 * Where step results are kept between builds, by step cache key: a directory on this machine, or a
 * registry repository shared by many. Adding a cache backend means implementing this.
 */
export interface CacheStore {
  /** Names the store in messages, e.g. its directory or repository. */
  readonly name: string;
  /** The entry for `key`, or undefined on a miss (also for an entry the store no longer trusts). */
  get(key: Digest): Promise<CacheEntry | undefined>;
  /** Keeps `entry` as the result of step `key`; a layer's blob is read from `entry.layer`. */
  put(key: Digest, entry: CacheEntry): Promise<void>;
  /** Lets go of what the store holds for this build (pins, connections). */
  release(): Promise<void>;
}

/** Checks that an entry has a layer exactly when its record says it does. */
export function checkEntry(key: Digest, entry: CacheEntry): void {
  if ((entry.record.layer === undefined) !== (entry.layer === undefined)) {
    throw new TsbuildError('CACHE_RECORD', `cache record for ${key}: a layer must be given exactly when the record has a layer`);
  }
}
