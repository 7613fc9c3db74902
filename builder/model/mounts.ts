/** The typed `RUN --mount` values a planned RUN step carries. */
import type { CopySource } from './sources.js';

export type CacheSharing = 'shared' | 'private' | 'locked';

/** Files of the build context, a stage, a named context or an image, read-only unless `readwrite` (writes are then discarded). */
export interface BindRunMount {
  readonly type: 'bind';
  readonly target: string;
  /** Path inside `from`, as written; `.` by default. */
  readonly source: string;
  readonly from: CopySource;
  readonly readwrite: boolean;
}

/** A directory kept between builds, shared by every step that names the same `id`. */
export interface CacheRunMount {
  readonly type: 'cache';
  readonly target: string;
  readonly id: string;
  readonly sharing: CacheSharing;
  readonly readonly: boolean;
  /** Permissions, owner and group given to the directory when it is first made. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** What a new cache starts with: `source` (default `.`) of `from`; empty when absent. */
  readonly seed?: { readonly from: CopySource; readonly source: string };
}

/** An empty writable directory for the step alone. */
export interface TmpfsRunMount {
  readonly type: 'tmpfs';
  readonly target: string;
}

/** A secret given to the build with `--secret`: as a read-only file at `target`, and/or in the variable `env`. */
export interface SecretRunMount {
  readonly type: 'secret';
  readonly id: string;
  readonly target?: string;
  readonly env?: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** The SSH agent given to the build with `--ssh`, as a socket at `target` named by `SSH_AUTH_SOCK`. */
export interface SshRunMount {
  readonly type: 'ssh';
  readonly id: string;
  readonly target: string;
  readonly required: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export type RunMount = BindRunMount | CacheRunMount | TmpfsRunMount | SecretRunMount | SshRunMount;
