import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson } from '../../layers/canonical-json.js';
import { TsbuildError } from '../../layers/errors.js';

test('canonical JSON sorts keys at every depth and has no whitespace', () => {
  const value = { b: 1, a: { d: [1, { y: 2, x: 1 }, 'two words'], c: 's' }, '10': true, '9': null, Z: 0, z: -0.5, é: 'e' };
  // Object.keys lists integer-like keys first in numeric order; canonical order is by code units.
  assert.equal(canonicalJson(value), '{"10":true,"9":null,"Z":0,"a":{"c":"s","d":[1,{"x":1,"y":2},"two words"]},"b":1,"z":-0.5,"é":"e"}');
  assert.deepEqual(JSON.parse(canonicalJson(value)), value);
  const reordered = { é: 'e', z: -0.5, Z: 0, '9': null, '10': true, a: { c: 's', d: [1, { x: 1, y: 2 }, 'two words'] }, b: 1 };
  assert.equal(canonicalJson(reordered), canonicalJson(value));
  assert.equal(canonicalJson([3, 1, 2]), '[3,1,2]', 'arrays keep their order');
  assert.equal(canonicalJson('a "quoted"\nline'), JSON.stringify('a "quoted"\nline'));
  const shared = { x: 1 };
  assert.equal(canonicalJson({ p: shared, q: shared }), '{"p":{"x":1},"q":{"x":1}}', 'a value used twice is not a cycle');
  const bare = Object.create(null) as Record<string, unknown>;
  bare['__proto__'] = 'a name like any other';
  assert.equal(canonicalJson(bare), '{"__proto__":"a name like any other"}');
});

test('canonical JSON rejects what JSON cannot hold exactly', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  const cases: [string, unknown, RegExp][] = [
    ['undefined', undefined, /undefined \(at \$\)/],
    ['undefined member', { a: { b: undefined } }, /undefined \(at \$\.a\.b\)/],
    ['undefined element', [1, undefined], /undefined \(at \$\[1\]\)/],
    ['hole', [1, , 3], /array hole \(at \$\[1\]\)/],
    ['function', { f: () => 1 }, /function/],
    ['symbol', Symbol('s'), /symbol/],
    ['bigint', 1n, /bigint/],
    ['NaN', { n: NaN }, /NaN/],
    ['Infinity', [Infinity], /Infinity/],
    ['-Infinity', -Infinity, /-Infinity/],
    ['cycle', cyclic, /cycle \(at \$\.self\)/],
    ['Date', new Date(0), /Date object/],
    ['Map', new Map(), /Map object/],
    ['Buffer', Buffer.from('x'), /Buffer object/],
  ];
  for (const [name, value, message] of cases) {
    assert.throws(() => canonicalJson(value), (err: unknown) => err instanceof TsbuildError && message.test(err.message), name);
  }
});
