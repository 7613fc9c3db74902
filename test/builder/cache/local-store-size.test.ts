import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseByteSize } from '../../../builder/cache/local-store-size.js';

test('plain byte counts, SI and IEC units, any case, fractions rounded down', () => {
  assert.equal(parseByteSize('1073741824'), 1073741824);
  assert.equal(parseByteSize('0'), 0);
  assert.equal(parseByteSize('10GiB'), 10 * 1024 ** 3);
  assert.equal(parseByteSize('500MB'), 500_000_000);
  assert.equal(parseByteSize('500mb'), 500_000_000);
  assert.equal(parseByteSize('2 gb'), 2_000_000_000);
  assert.equal(parseByteSize('3k'), 3000);
  assert.equal(parseByteSize('1.5KiB'), 1536);
  assert.equal(parseByteSize('1.0001KiB'), 1024);
  assert.equal(parseByteSize('7B'), 7);
  assert.equal(parseByteSize('2TiB'), 2 * 1024 ** 4);
});

test('anything else is a one-line usage error naming the flag', () => {
  for (const bad of ['', 'abc', '-1', '10XB', '1e3', 'GiB', '1.', '.5G', '5 G B']) {
    assert.throws(
      () => parseByteSize(bad),
      (error: Error & { code?: string }) =>
        error.code === 'BAD_FLAG' && error.message.includes('--cache-max-size') && !error.message.includes('\n'),
      bad,
    );
  }
  assert.throws(() => parseByteSize('99999999TiB'), /too large/);
  assert.throws(() => parseByteSize('x', '--other'), /invalid --other "x"/);
});
