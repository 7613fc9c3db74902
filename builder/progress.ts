import type { TransferPhase } from '../registry-client/index.js';

/** What a build reports as it goes; the CLI renders these as plain lines or JSON. */
export type BuildEvent =
  | { readonly kind: 'note'; readonly message: string }
  | { readonly kind: 'step-start'; readonly step: number; readonly name: string }
  | { readonly kind: 'step-done'; readonly step: number; readonly seconds: number }
  /** Whether a step's result came from the build cache, and if not, why. */
  | { readonly kind: 'step-cache'; readonly step: number; readonly cached: boolean; readonly summary: string; readonly differences: readonly string[] }
  | { readonly kind: 'step-output'; readonly step: number; readonly stream: 'stdout' | 'stderr'; readonly text: string }
  | { readonly kind: 'exported'; readonly what: string; readonly digest: string }
  | {
      readonly kind: 'transfer';
      readonly direction: 'pull' | 'push';
      readonly repository: string;
      readonly digest: string;
      /** `start`, `progress`, `resume`, `done`, or `cached`/`exists`/`mounted` when no bytes had to move. */
      readonly phase: TransferPhase;
      readonly bytes: number;
      readonly total: number;
    };

export type ProgressListener = (event: BuildEvent) => void;

export const silentProgress: ProgressListener = () => {};
