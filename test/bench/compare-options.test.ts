/** The bench's command line: which workloads, which tsbuild isolation rows, how many runs. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ISOLATION_ROWS, parseOptions } from '../../bench/compare/options.js';

test('without flags every workload and every isolation row runs three times', () => {
  assert.deepEqual(parseOptions([]), { only: ['w1', 'w2', 'w3', 'w4'], isolation: ['oci', 'chroot', 'rootless', 'none'], runs: 3 });
  assert.deepEqual(ISOLATION_ROWS, ['oci', 'chroot', 'rootless', 'none']);
});

test('--isolation picks rows, comma-separated or repeated, in table order and once each', () => {
  assert.deepEqual(parseOptions(['--isolation', 'none,oci']).isolation, ['oci', 'none']);
  assert.deepEqual(parseOptions(['--isolation=rootless', '--isolation', 'chroot', '--isolation', 'rootless']).isolation, ['chroot', 'rootless']);
});

test('--isolation keeps --only, --runs and --json working beside it', () => {
  assert.deepEqual(parseOptions(['--only', 'w2', '--isolation', 'rootless', '--runs', '1', '--json', 'out.json']), {
    only: ['w2'], isolation: ['rootless'], runs: 1, json: 'out.json',
  });
});

test('an unknown or missing --isolation value is a one-line error naming the choices', () => {
  assert.throws(() => parseOptions(['--isolation', 'auto']), { message: 'unknown isolation "auto" (expected one of oci, chroot, rootless, none)' });
  assert.throws(() => parseOptions(['--isolation', 'oci,']), { message: 'unknown isolation "" (expected one of oci, chroot, rootless, none)' });
  assert.throws(() => parseOptions(['--isolation']), /^Error: --isolation needs a value; usage: npm run bench -- .*--isolation oci,chroot,rootless,none/);
});

test('bad --only and --runs values are still refused', () => {
  assert.throws(() => parseOptions(['--only', 'w5']), { message: 'unknown workload "w5" (expected one of w1, w2, w3, w4)' });
  assert.throws(() => parseOptions(['--runs', '0']), { message: '--runs must be a positive whole number, not "0"' });
  assert.throws(() => parseOptions(['--rows', 'oci']), /^Error: unknown argument "--rows"/);
});
