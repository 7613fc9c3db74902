/**
 * `npm run conformance -- [--regenerate | --readme] [case ...]`:
 *   (no flag)     builds the cases with tsbuild and prints how each differs from its golden;
 *   --regenerate  rewrites the goldens with BuildKit (needs root, dockerd and the docker client);
 *   --readme      rewrites the README's Compatibility section from differences.json.
 * Does nothing when loaded by the test runner, which loads every file under test/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveBase } from './base-image.js';
import { loadCases, type ConformanceCase } from './cases.js';
import { loadDifferences } from './differences.js';
import { compatibilitySection, updateReadme } from './readme.js';
import { regenerate } from './regenerate.js';
import { CONCURRENCY, describeRun, runCase, type CaseRun } from './runner.js';

/** Runs `job` on every case, CONCURRENCY at a time; the results in the cases' order. */
async function inParallel(cases: readonly ConformanceCase[], job: (testCase: ConformanceCase) => Promise<CaseRun>): Promise<CaseRun[]> {
  const results: CaseRun[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < cases.length; index = next++) results[index] = await job(cases[index]!);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return results;
}

async function compareAll(names: ReadonlySet<string> | undefined): Promise<number> {
  const cases = loadCases(names);
  const differences = loadDifferences();
  const work = await mkdtemp(join(os.tmpdir(), 'tsbuild-conformance-'));
  let differing = 0;
  let unstable = 0;
  try {
    const base = await serveBase(work);
    try {
      const results = await inParallel(cases, (testCase) => runCase(testCase, base, differences));
      for (const [index, testCase] of cases.entries()) {
        const result = results[index]!;
        const text = describeRun(testCase, result);
        if (text !== '') differing += 1;
        if (result.unstableDigests.length > 0) unstable += 1;
        console.log(text !== '' ? text : `${testCase.name}: matches${result.comparison.accepted.length > 0 ? ` (accepted: ${result.comparison.accepted.join(', ')})` : ''}`);
        for (const line of result.unstableDigests) console.log(`  cached rebuild changes the digest ${line}`);
      }
    } finally {
      await base.registry.stop();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(`${cases.length} cases: ${cases.length - differing} match, ${differing} differ; ${unstable} change digest on a cached rebuild`);
  return differing > 0 || unstable > 0 ? 1 : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const flags = argv.filter((arg) => arg.startsWith('--'));
  const names = argv.filter((arg) => !arg.startsWith('--'));
  const only = names.length > 0 ? new Set(names) : undefined;
  const unknown = flags.filter((flag) => flag !== '--regenerate' && flag !== '--readme');
  if (unknown.length > 0) throw new Error(`unknown flag ${unknown[0]}: expected --regenerate or --readme`);
  if (flags.includes('--readme')) {
    const changed = updateReadme(compatibilitySection(loadDifferences(), loadCases().length));
    console.log(changed ? 'README.md: Compatibility section rewritten' : 'README.md: Compatibility section already up to date');
    return 0;
  }
  if (flags.includes('--regenerate')) {
    const cases = loadCases(only);
    const skipped = await regenerate(cases, (line) => console.log(line));
    if (skipped.length > 0) console.log(`kept hand-written goldens: ${skipped.join(', ')}`);
    return 0;
  }
  return compareAll(only);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.env.NODE_TEST_CONTEXT === undefined) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: Error) => {
      console.error(`conformance: ${error.message}`);
      process.exit(1);
    },
  );
}
