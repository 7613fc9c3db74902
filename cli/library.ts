/**
 * The library parts the commands run. Loaded by the command that runs (see `library()` in run.ts),
 * so `--help`, usage errors and light commands do not pay for the whole builder.
 */
export {
  build,
  defaultBuildCacheDir,
  defaultRunCacheDir,
  defaultStoreDir,
  enterUserNamespace,
  hostPlatform,
  inspectImage,
  listImages,
  LocalCacheStore,
  parseByteSize,
  parseCacheTtl,
  parseOutputSpec,
  parsePlatform,
  planBuild,
  pruneCacheMounts,
  pullBaseImage,
} from '../builder/index.js';
export { commonRequest, positiveSeconds, registrySettings, sourceDateEpoch } from './build-request.js';
export { explainNoSpace } from './disk-full.js';
export { errorLine, exitCodeOf } from './error-line.js';
export { parsePairs } from './parse-pairs.js';
export { progressRenderer } from './progress-renderer.js';
