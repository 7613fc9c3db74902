import { sha256Digest } from './digest.js';
import type { Digest } from './types.js';

/**
 * The ChainID of every prefix of a layer stack, from the image-spec (config.md):
 * ChainID(L0) = DiffID(L0), ChainID(L0..Ln) = SHA256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
 * Element i identifies the filesystem that results from applying diff_ids 0..i in order.
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const ids: Digest[] = [];
  for (const diffId of diffIds) {
    const previous = ids[ids.length - 1];
    ids.push(previous === undefined ? diffId : sha256Digest(`${previous} ${diffId}`));
  }
  return ids;
}

/** The ChainID of the whole stack; a stack needs at least one layer to have one. */
export function chainId(diffIds: readonly Digest[]): Digest {
  const last = chainIds(diffIds).pop();
  if (last === undefined) throw new Error('an empty layer stack has no ChainID');
  return last;
}
