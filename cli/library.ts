/**
 * The library parts the commands run. Loaded by the command that runs (see `library()` in run.ts),
 * so `--help`, usage errors and light commands do not pay for the whole builder.
 */
export { build, planBuild } from '../builder/build.js';
export { parseOutputSpec } from '../builder/output/output-spec.js';
export { defaultBuildCacheDir, LocalCacheStore } from '../builder/cache/local-store.js';
export { defaultRunCacheDir, pruneCacheMounts } from '../builder/run/cache-mounts.js';
export { parseByteSize } from '../builder/cache/local-store-size.js';
export { pullBaseImage } from '../builder/registry/registry-access.js';
export { inspectImage, listImages } from '../builder/store.js';
export { explainNoSpace } from './disk-full.js';
export { progressRenderer } from './progress-renderer.js';
export { enterUserNamespace } from './userns-reexec.js';

/** `--cache-ttl` in seconds; the cache repository code, with the registry client, loads only when the flag is given. */
export async function parseCacheTtl(text: string): Promise<number> {
  const { parseCacheTtl: parse } = await import('../builder/cache/registry-cache.js');
  return parse(text);
}
