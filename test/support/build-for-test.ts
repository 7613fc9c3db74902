/**
 * build() with the options tests vary, given flat, and with this process's environment, so that
 * every build of a test uses the private TSBUILD_CACHE_DIR the test run sets.
 */
import { build, type BuildRequest, type BuildResult } from '../../builder/build.js';
import type { BuildOutputs, BuildSource, CacheSettings, ImageSettings, RunSettings } from '../../builder/build-request.js';
import type { OutputSpec } from '../../builder/output/output-spec.js';

export interface TestBuildOptions
  extends BuildSource,
    Omit<BuildOutputs, 'targets'>,
    ImageSettings,
    Pick<BuildRequest, 'registry' | 'progress' | 'signal' | 'tmpDir'>,
    Pick<RunSettings, 'isolation' | 'forceInPlace' | 'secrets' | 'ssh'> {
  readonly outputs?: readonly OutputSpec[];
  readonly cacheDir?: CacheSettings['dir'];
  readonly noCache?: CacheSettings['disabled'];
  readonly noCacheFilter?: CacheSettings['disabledStages'];
  readonly cacheRepo?: CacheSettings['repository'];
  readonly cacheTtlSeconds?: CacheSettings['ttlSeconds'];
  readonly cacheMaxBytes?: CacheSettings['maxBytes'];
  readonly runTimeoutSeconds?: RunSettings['timeoutSeconds'];
}

export function buildForTest(options: TestBuildOptions): Promise<BuildResult> {
  const { context, dockerfile, buildArgs, target, platforms, buildContexts } = options;
  const { tags, storeDir, iidfile, digestFile, metadataFile, labels, compression, compressionLevel, sourceDateEpoch } = options;
  const { isolation, forceInPlace, secrets, ssh, registry, progress, signal, tmpDir } = options;
  return build(
    defined({
      source: defined({ context, dockerfile, buildArgs, target, platforms, buildContexts }),
      outputs: defined({ targets: options.outputs, tags, storeDir, iidfile, digestFile, metadataFile }),
      image: defined({ labels, compression, compressionLevel, sourceDateEpoch }),
      cache: defined({
        dir: options.cacheDir,
        disabled: options.noCache,
        disabledStages: options.noCacheFilter,
        repository: options.cacheRepo,
        ttlSeconds: options.cacheTtlSeconds,
        maxBytes: options.cacheMaxBytes,
      }),
      run: defined({ isolation, forceInPlace, timeoutSeconds: options.runTimeoutSeconds, secrets, ssh }),
      registry,
      progress,
      signal,
      tmpDir,
      env: process.env,
    }) as BuildRequest,
  );
}

/** `record` without its undefined fields (the request types do not take explicit undefined). */
function defined<T extends object>(record: T): T {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as T;
}
