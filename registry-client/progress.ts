import type { Digest } from '../layers/types.js';

/**
 * What happened to one blob (or manifest) of a pull or push:
 * - `cached`: already in the local cache, nothing fetched;
 * - `exists`: the registry already has it, nothing sent;
 * - `mounted`: the registry copied it from another repository (it answered 201 to the mount);
 * - `start`, `progress`, `done`: a transfer began, moved on (`bytes` so far), finished;
 * - `resume`: a transfer that failed goes on from `bytes` (0 when it starts over).
 */
export type TransferPhase = 'cached' | 'exists' | 'mounted' | 'start' | 'progress' | 'resume' | 'done';

export interface TransferEvent {
  direction: 'pull' | 'push';
  /** `registry/repository` the blob moves from or to. */
  repository: string;
  digest: Digest;
  mediaType: string;
  phase: TransferPhase;
  /** Bytes transferred (or present) so far. */
  bytes: number;
  /** The blob's size. */
  total: number;
  /** For `mounted`: the repository it was mounted from. */
  from?: string;
}

export type ProgressListener = (event: TransferEvent) => void;
