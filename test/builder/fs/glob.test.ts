/** COPY/ADD source patterns follow Go's `filepath.Match`, as BuildKit's copy does. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hasWildcard, matchPattern } from '../../../builder/fs/glob.js';

describe('matchPattern', () => {
  const cases: [pattern: string, name: string, matches: boolean][] = [
    ['abc', 'abc', true],
    ['abc', 'abd', false],
    ['app-*', 'app-1', true],
    ['app-*', 'app-', true],
    ['app-*', 'ap-1', false],
    ['*', 'a/b', false],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abe', true],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['n\\?pe', 'n?pe', true],
    ['n\\?pe', 'nope', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'x', true],
    ['[x\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['[\\-x]', 'a', false],
    ['*x', 'xxx', true],
    ['[z-a]', 'm', false],
    // Malformed patterns match nothing: BuildKit ignores the error.
    ['[]a]', ']', false],
    ['[-]', '-', false],
    ['[x-]', 'x', false],
    ['[-x]', 'x', false],
    ['\\', 'a', false],
    ['[a-b-c]', 'a', false],
    ['[', 'a', false],
    ['[^', 'a', false],
    ['[^bc', 'a', false],
    ['a[', 'a', false],
    ['a[', 'ab', false],
    ['a[', 'x', false],
    ['a/b[', 'a/b', false],
    ['*x[', 'xx', false],
  ];
  for (const [pattern, name, matches] of cases) {
    it(`${JSON.stringify(pattern)} ${matches ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => {
      assert.equal(matchPattern(pattern, name), matches);
    });
  }
});

describe('hasWildcard', () => {
  it('finds unquoted *, ? and [ only', () => {
    assert.equal(hasWildcard('app-*'), true);
    assert.equal(hasWildcard('a[bc]'), true);
    assert.equal(hasWildcard('a?'), true);
    assert.equal(hasWildcard('n\\?pe'), false);
    assert.equal(hasWildcard('a\\*\\['), false);
    assert.equal(hasWildcard('plain-name.txt'), false);
  });
});
