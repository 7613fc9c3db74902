/**
 * The differential corpus: every case built by tsbuild must give the tree and config that BuildKit
 * gave (the committed goldens), apart from the listed deliberate differences; and a fully cached
 * rebuild must give the same manifest digest, with and without SOURCE_DATE_EPOCH.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requires } from '../support/requirement.js';
import { serveBase, type ServedBase } from './base-image.js';
import { loadCases } from './cases.js';
import { loadDifferences } from './differences.js';
import { CONCURRENCY, describeRun, runCase } from './runner.js';

const tools = ['/usr/bin/umoci', '/usr/bin/skopeo', '/usr/bin/docker-registry'];
const missingTool = tools.find((tool) => !existsSync(tool));
const missing = process.getuid?.() !== 0 ? 'needs root: RUN steps, and umoci keeping file owners' : missingTool !== undefined && `${missingTool} is missing`;
const cases = loadCases();
const differences = loadDifferences();

describe('conformance corpus: tsbuild builds what BuildKit builds', { skip: requires(missing), concurrency: CONCURRENCY }, () => {
  let work: string;
  let base: ServedBase;

  before(async () => {
    work = await mkdtemp(join(os.tmpdir(), 'tsbuild-conformance-'));
    base = await serveBase(work);
  });

  after(async () => {
    await base?.registry.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const testCase of cases) {
    test(testCase.name, async (t) => {
      const result = await runCase(testCase, base, differences);
      await t.test('same tree and config as BuildKit', () => {
        const text = describeRun(testCase, result);
        if (text !== '') assert.fail(`\n${text}`);
      });
      await t.test('a fully cached rebuild gives the same manifest digest', () => {
        if (result.unstableDigests.length > 0) assert.fail(`\n${result.unstableDigests.join('\n')}`);
      });
    });
  }
});
