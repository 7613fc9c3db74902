/** yargs loads with its segmenters deferred, and leaves the global `Intl.Segmenter` as it found it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadYargs } from '../../cli/load-yargs.js';

test('loading yargs leaves Intl.Segmenter as it was, and yargs still measures wide text', async () => {
  const before = Intl.Segmenter;
  const yargs = await loadYargs();
  assert.equal(Intl.Segmenter, before);
  assert.equal(await loadYargs(), yargs, 'loaded once');
  // Help text wraps by display width, two columns for each CJK character: 40 of them do not fit one 60-column line.
  const wide = '字'.repeat(40);
  const help = await yargs(['--help']).scriptName('t').option('x', { describe: wide }).exitProcess(false).wrap(60).getHelp();
  const parts = help.split('\n').filter((line) => line.includes('字'));
  assert.ok(parts.length > 1, help);
  assert.equal(parts.join('').replace(/[^字]/g, ''), wide);
});
