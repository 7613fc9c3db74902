import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { chainId, chainIds } from '../../layers/chain-id.js';
import type { Digest } from '../../layers/types.js';

/** SHA-256 of `text` as computed by coreutils, independently of our own hashing. */
function sha256sum(text: string): Digest {
  const out = execFileSync('sha256sum', { input: text, encoding: 'utf8' });
  return `sha256:${out.split(' ')[0]}`;
}

const randomDiffId = (): Digest => `sha256:${randomBytes(32).toString('hex')}`;

test('the ChainID of one layer is its DiffID', () => {
  const diffId = randomDiffId();
  assert.equal(chainId([diffId]), diffId);
  assert.deepEqual(chainIds([diffId]), [diffId]);
});

test('each further layer hashes the previous ChainID, a space and its DiffID', () => {
  const diffIds = [randomDiffId(), randomDiffId(), randomDiffId()];
  const second = sha256sum(`${diffIds[0]} ${diffIds[1]}`);
  const third = sha256sum(`${second} ${diffIds[2]}`);
  assert.deepEqual(chainIds(diffIds), [diffIds[0], second, third]);
  assert.equal(chainId(diffIds), third);
});

test('the order of layers matters', () => {
  const [a, b] = [randomDiffId(), randomDiffId()];
  assert.notEqual(chainId([a, b]), chainId([b, a]));
  assert.equal(chainId([a, a]), sha256sum(`${a} ${a}`));
});

test('an empty stack has no ChainID', () => {
  assert.deepEqual(chainIds([]), []);
  assert.throws(() => chainId([]), /no ChainID/);
});
