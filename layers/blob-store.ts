import type { Digest } from './types.js';

/** Where content-addressed blobs live while and after they are written. */
export interface BlobStore {
  /** A fresh path on the same filesystem as the blobs, for a blob whose digest is not yet known. */
  tempPath(): Promise<string>;
  /** Moves a finished temp file into place under its digest. A blob already present wins and the temp file is removed. */
  commit(tempPath: string, digest: Digest): Promise<void>;
  has(digest: Digest): Promise<boolean>;
  /** The path of a committed blob. */
  path(digest: Digest): string;
}
