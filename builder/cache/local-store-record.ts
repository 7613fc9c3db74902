import type { Descriptor, Digest } from '../../layers/types.js';

/** What the build cache keeps for one step, under the step's cache key. */
export interface CacheRecord {
  version: 1;
  /** The layer the step made; absent for a step that made none. */
  layer?: { descriptor: Descriptor; diffId: Digest };
  history: { created_by: string; empty_layer?: boolean };
  /** The step's named inputs, so that a later miss can say which of them changed. */
  inputs: Record<string, string>;
  createdAt: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `value` as a CacheRecord, or undefined when it is not a well-formed version 1 record. */
export function asCacheRecord(value: unknown): CacheRecord | undefined {
  if (!isObject(value) || value.version !== 1) return undefined;
  if (typeof value.createdAt !== 'string' || !isStringMap(value.inputs)) return undefined;
  const history = value.history;
  if (!isObject(history) || typeof history.created_by !== 'string') return undefined;
  if (history.empty_layer !== undefined && typeof history.empty_layer !== 'boolean') return undefined;
  if (value.layer !== undefined && !isLayer(value.layer)) return undefined;
  return value as unknown as CacheRecord;
}

function isLayer(value: unknown): boolean {
  if (!isObject(value) || typeof value.diffId !== 'string' || !DIGEST.test(value.diffId)) return false;
  const descriptor = value.descriptor;
  return (
    isObject(descriptor) &&
    typeof descriptor.mediaType === 'string' &&
    typeof descriptor.digest === 'string' &&
    DIGEST.test(descriptor.digest) &&
    Number.isSafeInteger(descriptor.size) &&
    (descriptor.size as number) >= 0
  );
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((entry) => typeof entry === 'string');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
