/** The tsbuild library: plan and build OCI images from Dockerfiles. */
export { build, planBuild, type BuildRequest, type BuildResult, type PlanRequest } from './build.js';
export { parseOutputSpec, type OutputSpec } from './output/output-spec.js';
export { hostPlatform, parsePlatform } from './plan/platform.js';
export { formatPlatform } from '../layers/platform.js';
export type { Compression } from '../layers/compression.js';
export type { BuildPlan } from './model/plan.js';
export type { BuildEvent, ProgressListener } from './progress.js';
export type { IsolationMode } from './isolation/backend.js';
export { enterUserNamespace, type ReexecCommand } from './isolation/userns-reexec.js';
export { pullBaseImage, type RegistrySettings } from './registry/registry-access.js';
export { defaultBuildCacheDir, LocalCacheStore } from './cache/local-store.js';
export { parseByteSize } from './cache/local-store-size.js';
export { parseCacheTtl } from './cache/cache-ttl.js';
export { defaultRunCacheDir, pruneCacheMounts } from './run/cache-mounts.js';
export { defaultStoreDir } from './locations.js';
export { inspectImage, listImages } from './store.js';
export { TsbuildError, SourceError, type ErrorCode, type ErrorGroup } from '../layers/errors.js';
