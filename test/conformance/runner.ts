/** Runs cases through tsbuild and compares them with their goldens; shared by the test and the script. */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { ServedBase } from './base-image.js';
import { goldenFile, prepareContext, type ConformanceCase } from './cases.js';
import { acceptor, type Difference } from './differences.js';
import { compare, FAILED, readGolden, type Comparison } from './golden.js';
import { snapshotLayout, UnpackError, type Snapshot } from './snapshot.js';
import { buildWithTsbuild, REF_NAME } from './tsbuild-side.js';

export const SOURCE_DATE_EPOCH = 1700000000;
/** Cases built at once: a build mostly waits on processes and disk, so a few overlap well. */
export const CONCURRENCY = 3;

export interface CaseRun {
  /** tsbuild's error message when the build failed. */
  readonly error?: string;
  /** Why umoci could not unpack the OCI layout tsbuild wrote; the tree is then not compared. */
  readonly unpackError?: string;
  readonly comparison: Comparison;
  /** Builds whose fully cached rebuild gave another manifest digest: `first -> rebuild`, by label. */
  readonly unstableDigests: string[];
}

/** A scratch area for one case: context, layouts, caches; the caller removes it. */
async function caseWork(testCase: ConformanceCase): Promise<string> {
  return mkdtemp(join(os.tmpdir(), `tsbuild-conformance-${testCase.name}-`));
}

/**
 * Builds the case with tsbuild, snapshots it and compares it with its golden. Then, with the same
 * cache, builds it again without and with SOURCE_DATE_EPOCH and records any rebuild whose digest
 * differs from the build before it.
 */
export async function runCase(testCase: ConformanceCase, base: ServedBase, differences: readonly Difference[]): Promise<CaseRun> {
  const work = await caseWork(testCase);
  try {
    const context = join(work, 'context');
    prepareContext(testCase, context);
    const settings = {
      context, bases: base.references, cacheDir: join(work, 'cache'), imageCacheDir: base.imageCacheDir, tmpDir: join(work, 'tmp'),
    };
    await mkdir(settings.tmpDir);
    let snapshot: Snapshot | undefined;
    let error: string | undefined;
    let unpackError: string | undefined;
    let firstDigest: string | undefined;
    try {
      const first = await buildWithTsbuild(testCase, join(work, 'first'), settings);
      firstDigest = first.digest;
      snapshot = await snapshotLayout(first.layoutDir, REF_NAME, join(work, 'rootfs'), base.snapshot);
    } catch (err) {
      if (err instanceof UnpackError) unpackError = err.message;
      else {
        snapshot = FAILED;
        error = (err as Error).message;
      }
    }
    const expected = existsSync(goldenFile(testCase)) ? readGolden(goldenFile(testCase)) : new Map([['golden', 'missing']]);
    const comparison = snapshot !== undefined ? compare(expected, snapshot, acceptor(differences, testCase.name)) : { unexplained: [], accepted: [] };
    const unstableDigests: string[] = [];
    if (firstDigest !== undefined) {
      const again = await buildWithTsbuild(testCase, join(work, 'again'), settings);
      if (again.digest !== firstDigest) unstableDigests.push(`without SOURCE_DATE_EPOCH: ${firstDigest} -> ${again.digest}`);
      const withEpoch = { ...settings, sourceDateEpoch: SOURCE_DATE_EPOCH };
      const epochFirst = await buildWithTsbuild(testCase, join(work, 'epoch-first'), withEpoch);
      const epochAgain = await buildWithTsbuild(testCase, join(work, 'epoch-again'), withEpoch);
      if (epochAgain.digest !== epochFirst.digest) unstableDigests.push(`with SOURCE_DATE_EPOCH: ${epochFirst.digest} -> ${epochAgain.digest}`);
    }
    return { ...(error !== undefined ? { error } : {}), ...(unpackError !== undefined ? { unpackError } : {}), comparison, unstableDigests };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A readable account of a case's differences, empty when it matches. */
export function describeRun(testCase: ConformanceCase, result: CaseRun): string {
  const parts: string[] = [];
  if (result.unpackError !== undefined) parts.push(`${testCase.name}: tsbuild's OCI layout does not unpack: ${result.unpackError.replace(/\s+/g, ' ')}`);
  if (result.comparison.unexplained.length > 0) {
    parts.push(`${testCase.name}: differs from its golden (${goldenFile(testCase)}):`, ...result.comparison.unexplained);
    if (result.error !== undefined) parts.push(`  tsbuild failed: ${result.error}`);
  }
  return parts.join('\n');
}
