/** Rebuilds the golden files with BuildKit: a private dockerd pulling the base from the local registry. */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { Dockerd } from '../../bench/compare/dockerd.js';
import { serveBase } from './base-image.js';
import { buildkitVersion, buildWithBuildkit, BUILDKIT_REF_NAME } from './buildkit-side.js';
import { goldenFile, prepareContext, type ConformanceCase } from './cases.js';
import { FAILED, writeGolden } from './golden.js';
import { configLines, snapshotLayout, UnpackError, type Snapshot } from './snapshot.js';

/** Writes the golden of every case that BuildKit can build; returns the names of those it skipped. */
export async function regenerate(cases: readonly ConformanceCase[], log: (line: string) => void): Promise<string[]> {
  const work = await mkdtemp(join(os.tmpdir(), 'tsbuild-conformance-regenerate-'));
  const skipped: string[] = [];
  try {
    const base = await serveBase(work);
    try {
      const daemonDir = join(work, 'dockerd');
      const daemon = await Dockerd.start(daemonDir, base.registry.host);
      try {
        const version = await buildkitVersion(daemon);
        log(`BuildKit: ${version}; base ${base.references.BASE}`);
        for (const testCase of cases) {
          const { handWritten } = testCase.options;
          if (handWritten !== undefined && handWritten.reference === undefined) {
            skipped.push(testCase.name);
            continue;
          }
          const dockerfile = handWritten?.reference !== undefined ? join(testCase.dir, handWritten.reference) : testCase.dockerfile;
          const caseDir = join(work, 'cases', testCase.name);
          await mkdir(caseDir, { recursive: true });
          const context = join(caseDir, 'context');
          prepareContext(testCase, context);
          const layout = join(caseDir, 'layout');
          let snapshot: Snapshot;
          try {
            const image = await buildWithBuildkit(daemon, join(daemonDir, 'data'), testCase, dockerfile, context, base.references, layout);
            snapshot = image.layoutDir !== undefined
              ? await snapshotLayout(image.layoutDir, BUILDKIT_REF_NAME, join(caseDir, 'rootfs'), base.snapshot, image.config)
              : configLines(image.config);
            log(`${testCase.name}: built`);
          } catch (error) {
            if (error instanceof UnpackError) throw error;
            snapshot = FAILED;
            log(`${testCase.name}: BuildKit fails: ${(error as Error).message}`);
          }
          const header = [`Conformance golden of ${testCase.name}, written by \`npm run conformance -- --regenerate\`.`, `Built by ${version}.`];
          if (handWritten !== undefined) header.push(`Hand-written: ${handWritten.reason}`, `Built from the equivalent ${handWritten.reference}.`);
          writeGolden(goldenFile(testCase), snapshot, header);
          await rm(caseDir, { recursive: true, force: true });
        }
      } finally {
        await daemon.stop();
      }
    } finally {
      await base.registry.stop();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return skipped;
}
