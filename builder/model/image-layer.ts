import type { Descriptor, Digest } from '../../layers/types.js';

/** A layer of an image being built: its blob descriptor, diff_id, and where the blob is on disk. */
export interface ImageLayer {
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
  readonly blobPath: string;
}
