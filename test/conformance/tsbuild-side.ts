/** Builds a case with tsbuild (the library, in process) into an OCI layout. */
import { parsePlatform } from '../../builder/index.js';
import { buildForTest } from '../support/build-for-test.js';
import { buildArgs, type BaseReferences, type ConformanceCase } from './cases.js';

/** The image's name, and its ref name in the layout: the tag alone, as BuildKit's OCI exporter writes it. */
const IMAGE_NAME = 'conformance:latest';
export const REF_NAME = 'latest';

export interface TsbuildOutput {
  readonly layoutDir: string;
  /** The digest of the exported manifest. */
  readonly digest: string;
}

export interface TsbuildSettings {
  readonly context: string;
  readonly bases: BaseReferences;
  readonly cacheDir: string;
  readonly imageCacheDir: string;
  readonly tmpDir: string;
  readonly sourceDateEpoch?: number;
}

/** Builds `testCase` into `layoutDir`, the image tagged `conformance:latest`; a failed build throws. */
export async function buildWithTsbuild(testCase: ConformanceCase, layoutDir: string, settings: TsbuildSettings): Promise<TsbuildOutput> {
  const { platform, target } = testCase.options;
  const result = await buildForTest({
    context: settings.context,
    dockerfile: testCase.dockerfile,
    buildArgs: buildArgs(testCase, settings.bases),
    ...(target !== undefined ? { target } : {}),
    ...(platform !== undefined ? { platforms: [parsePlatform(platform)] } : {}),
    tags: [IMAGE_NAME],
    outputs: [{ type: 'oci', dest: layoutDir, tar: false }],
    cacheDir: settings.cacheDir,
    tmpDir: settings.tmpDir,
    registry: { imageCacheDir: settings.imageCacheDir },
    ...(settings.sourceDateEpoch !== undefined ? { sourceDateEpoch: settings.sourceDateEpoch } : {}),
  });
  return { layoutDir, digest: result.descriptor.digest };
}
