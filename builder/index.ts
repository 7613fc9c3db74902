/** The tsbuild library: plan and build OCI images from Dockerfiles. */
export { build, planBuild, type BuildRequest, type BuildResult, type PlanRequest } from './build.js';
export { parseOutputSpec, type OutputSpec } from './output/output-spec.js';
export { parsePlatform } from './plan/platform.js';
export { formatPlatform } from '../layers/platform.js';
export type { BuildPlan } from './plan/plan-types.js';
export type { BuildEvent, ProgressListener } from './progress.js';
export { defaultStoreDir } from './store-location.js';
export { inspectImage, listImages } from './store.js';
export { TsbuildError, SourceError } from '../layers/errors.js';
