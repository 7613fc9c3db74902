/** What a caller asks of planBuild() and build(), grouped by what each part is about. */
import type { Compression } from '../layers/compression.js';
import type { Platform } from '../layers/types.js';
import type { IsolationMode } from './isolation/backend.js';
import type { OutputSpec } from './output/output-spec.js';
import type { ProgressListener } from './progress.js';
import type { RegistrySettings } from './registry/registry-access.js';

/** What to build: the context, the Dockerfile, and what selects and parameterises its stages. */
export interface BuildSource {
  /** The build context directory. */
  readonly context: string;
  /** The Dockerfile; `CONTEXT/Dockerfile` when absent. */
  readonly dockerfile?: string;
  readonly buildArgs?: ReadonlyMap<string, string>;
  readonly target?: string;
  /** Target platforms; the host's when empty. */
  readonly platforms?: readonly Platform[];
  /** Named contexts, `NAME=oci-layout://DIR[:TAG]` or `NAME=DIR`. */
  readonly buildContexts?: readonly string[];
}

export interface PlanRequest {
  readonly source: BuildSource;
  /** How images that are neither stages nor build contexts are pulled, and where images are pushed. */
  readonly registry?: RegistrySettings;
  /**
   * The environment the library may read: the cache and store locations (`TSBUILD_CACHE_DIR`,
   * `TSBUILD_STORE`, `XDG_*`, `HOME`), `env=` secrets and the default SSH agent. Nothing when absent;
   * the command line passes its own.
   */
  readonly env?: NodeJS.ProcessEnv;
}

/** Where the image goes, under which names, and which files describe it. */
export interface BuildOutputs {
  /** The exports; the local store when empty. */
  readonly targets?: readonly OutputSpec[];
  readonly tags?: readonly string[];
  /** The local store used when no target is given; `defaultStoreDir(env)` when absent. */
  readonly storeDir?: string;
  /** Writes the image ID (config digest, or index digest for several platforms) here. */
  readonly iidfile?: string;
  /** Writes the digest of the manifest (or index) that was exported or pushed here. */
  readonly digestFile?: string;
  /** Writes the digest, names and descriptor as JSON here, with BuildKit's key names. */
  readonly metadataFile?: string;
}

/** What the image records besides its files. */
export interface ImageSettings {
  readonly labels?: ReadonlyMap<string, string>;
  readonly compression?: Compression;
  readonly compressionLevel?: number;
  /** Clamps timestamps to this time (seconds since 1970) and makes it the image's creation time. */
  readonly sourceDateEpoch?: number;
}

/** The build cache, on this machine and in a registry. */
export interface CacheSettings {
  /** The build cache directory; `<cache dir>/build-cache` when absent. */
  readonly dir?: string;
  /** Runs every step instead of reusing cached results (results are still stored). */
  readonly disabled?: boolean;
  /** Stages (by name or index) whose steps always run. */
  readonly disabledStages?: readonly string[];
  /** A registry repository (`REGISTRY/REPO`) that shares the build cache between machines. */
  readonly repository?: string;
  /** Entries of the cache repository older than this many seconds are ignored. */
  readonly ttlSeconds?: number;
  /** Evicts least recently used cache entries after the build until the cache is at most this many bytes. */
  readonly maxBytes?: number;
}

/** How RUN steps run. */
export interface RunSettings {
  /** How RUN steps are isolated; `auto` when absent. */
  readonly isolation?: IsolationMode;
  /** Lets `isolation: 'none'` replace the root filesystem outside a detected container. */
  readonly forceInPlace?: boolean;
  /** Kills a RUN step that takes longer than this many seconds, failing the build. */
  readonly timeoutSeconds?: number;
  /** `id=ID,src=PATH` or `id=ID,env=VAR`: what `RUN --mount=type=secret` can mount. */
  readonly secrets?: readonly string[];
  /** `ID` (the agent at `$SSH_AUTH_SOCK` of `env`) or `ID=SOCKET`: the agents `RUN --mount=type=ssh` can reach. */
  readonly ssh?: readonly string[];
}

export interface BuildRequest extends PlanRequest {
  readonly outputs?: BuildOutputs;
  readonly image?: ImageSettings;
  readonly cache?: CacheSettings;
  readonly run?: RunSettings;
  readonly progress?: ProgressListener;
  readonly signal?: AbortSignal;
  /** Where the build's scratch space (rootfs mounts, temp blobs) goes; the system temp dir when absent. */
  readonly tmpDir?: string;
}
