import type { Digest } from '../../layers/types.js';

/** A file of the cache that eviction may remove, with the blob it keeps alive, if any. */
export interface EvictionCandidate {
  readonly path: string;
  readonly size: number;
  readonly lastUsedMs: number;
  readonly blob?: Digest;
}

/**
 * The candidates to remove, least recently used first, so that what remains fits in `maxBytes`.
 * The total counts every candidate and every blob some candidate refers to (blobs referred to by
 * none are garbage, removed anyway); evicting a candidate frees its own size, and its blob's once
 * no remaining candidate refers to that blob.
 */
export function planEviction(
  candidates: readonly EvictionCandidate[],
  blobSizes: ReadonlyMap<Digest, number>,
  maxBytes: number,
): EvictionCandidate[] {
  const references = new Map<Digest, number>();
  let total = 0;
  for (const candidate of candidates) {
    total += candidate.size;
    if (candidate.blob === undefined) continue;
    const count = references.get(candidate.blob) ?? 0;
    if (count === 0) total += blobSizes.get(candidate.blob) ?? 0;
    references.set(candidate.blob, count + 1);
  }
  const oldestFirst = [...candidates].sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.path.localeCompare(b.path));
  const evicted: EvictionCandidate[] = [];
  for (const candidate of oldestFirst) {
    if (total <= maxBytes) break;
    evicted.push(candidate);
    total -= candidate.size;
    if (candidate.blob === undefined) continue;
    const left = (references.get(candidate.blob) as number) - 1;
    references.set(candidate.blob, left);
    if (left === 0) total -= blobSizes.get(candidate.blob) ?? 0;
  }
  return evicted;
}
