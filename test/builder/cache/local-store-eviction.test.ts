import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planEviction, type EvictionCandidate } from '../../../builder/cache/local-store-eviction.js';
import type { Digest } from '../../../layers/types.js';

const blobA: Digest = `sha256:${'a'.repeat(64)}`;
const blobB: Digest = `sha256:${'b'.repeat(64)}`;
const blobs = new Map<Digest, number>([
  [blobA, 1000],
  [blobB, 500],
]);

const entry = (path: string, lastUsedMs: number, blob?: Digest): EvictionCandidate => ({ path, size: 10, lastUsedMs, blob });

test('evicts least recently used first, only as far as needed', () => {
  const candidates = [entry('new', 30, blobB), entry('old', 10, blobA), entry('mid', 20)];
  // Total: 3 entries (30) + both blobs (1500) = 1530.
  assert.deepEqual(planEviction(candidates, blobs, 1530), []);
  assert.deepEqual(planEviction(candidates, blobs, 1529).map((e) => e.path), ['old']);
  assert.deepEqual(planEviction(candidates, blobs, 520).map((e) => e.path), ['old']);
  assert.deepEqual(planEviction(candidates, blobs, 519).map((e) => e.path), ['old', 'mid']);
  assert.deepEqual(planEviction(candidates, blobs, 0).map((e) => e.path), ['old', 'mid', 'new']);
});

test('a shared blob counts once and is freed only with its last referrer', () => {
  const candidates = [entry('first', 1, blobA), entry('second', 2, blobA)];
  // Total 1020; evicting "first" frees only its 10 bytes.
  assert.deepEqual(planEviction(candidates, blobs, 1010).map((e) => e.path), ['first']);
  assert.deepEqual(planEviction(candidates, blobs, 1009).map((e) => e.path), ['first', 'second']);
});

test('blobs no candidate refers to are not counted', () => {
  assert.deepEqual(planEviction([entry('only', 1, blobB)], blobs, 510), []);
});
