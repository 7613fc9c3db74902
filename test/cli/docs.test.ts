import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { cliReference } from '../../cli/cli-reference.js';
import { buildOptions, planOptions } from '../../cli/options.js';
import { kanikoOptions, kanikoRefused } from '../../cli/kaniko-flags.js';
import { repoRoot } from '../support/repo-root.js';

test('docs/cli.md is what `npm run docs` generates from the flag definitions', async () => {
  const committed = await readFile(path.join(repoRoot(), 'docs/cli.md'), 'utf8');
  assert.ok(committed === cliReference(), 'docs/cli.md is out of date: run `npm run docs` and commit the result');
});

test('the reference lists every flag of build and plan and every kaniko flag', () => {
  const reference = cliReference();
  for (const flag of [...Object.keys(buildOptions), ...Object.keys(planOptions), ...Object.keys(kanikoOptions), ...Object.keys(kanikoRefused)]) {
    assert.match(reference, new RegExp(`\\| \`--${flag}\``), flag);
  }
  assert.match(reference, /\| `--cache-to` \| `--cache-to` \|/);
  assert.match(reference, /\| `--tar-path` \| --output type=docker,dest=FILE \|/);
});
