/**
 * The state-set pattern matcher against regular expressions with Perl (and Go) leftmost-first
 * semantics, which BuildKit uses, on every small pattern and value over a tiny alphabet.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePattern, PatternFailure, replaceAll, replaceFirst, trimPrefix, trimSuffix } from '../../../builder/frontend/shell-pattern.js';

/** The pattern as a regular expression, as BuildKit converts it. */
function regExpOf(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  let source = anchored ? '^' : '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') source += greedy ? '[^\\n]*' : '[^\\n]*?';
    else if (ch === '?') source += '[^\\n]';
    else if (ch === '\\') source += `\\${chars[++i]}`;
    else source += ch;
  }
  return new RegExp(source, 'gu');
}

function expectedTrimPrefix(value: string, pattern: string, longest: boolean): string {
  const match = regExpOf(pattern, longest, true).exec(value);
  return match ? value.slice(match[0].length) : value;
}

function expectedReplaceFirst(value: string, pattern: string, replacement: string): string {
  const match = regExpOf(pattern, true, false).exec(value);
  return match ? value.slice(0, match.index) + replacement + value.slice(match.index + match[0].length) : value;
}

/** Go's ReplaceAllString: an empty match right after a match is not replaced. */
function expectedReplaceAll(value: string, pattern: string, replacement: string): string {
  const re = regExpOf(pattern, true, false);
  let out = '';
  let lastEnd = 0;
  for (let from = 0; from <= value.length; ) {
    re.lastIndex = from;
    const match = re.exec(value);
    if (!match) break;
    const end = match.index + match[0].length;
    out += value.slice(lastEnd, match.index);
    if (end > lastEnd || match.index === 0) out += replacement;
    lastEnd = end;
    from = Math.max(end, from + 1);
  }
  return out + value.slice(lastEnd);
}

/** Every string of up to `length` characters from `alphabet`. */
function strings(alphabet: readonly string[], length: number): string[] {
  let level = [''];
  const all = [''];
  for (let i = 0; i < length; i++) {
    level = level.flatMap((s) => alphabet.map((ch) => s + ch));
    all.push(...level);
  }
  return all;
}

const values = strings(['a', 'b', '\n'], 4);
const patterns = strings(['a', 'b', '*', '?', '\\*'], 3);

describe('shell patterns', () => {
  test('match as leftmost-first regular expressions do', () => {
    for (const pattern of patterns) {
      const parsed = parsePattern(pattern);
      for (const value of values) {
        const context = `pattern ${JSON.stringify(pattern)} on ${JSON.stringify(value)}`;
        for (const longest of [false, true]) {
          assert.equal(trimPrefix(value, parsed, longest), expectedTrimPrefix(value, pattern, longest), `# ${context}`);
          const reversed = [...pattern.replace(/\\\*/g, '\u0001')].reverse().join('').replace(/\u0001/g, '\\*');
          const expectedSuffix = [...expectedTrimPrefix([...value].reverse().join(''), reversed, longest)].reverse().join('');
          assert.equal(trimSuffix(value, parsed, longest), expectedSuffix, `% ${context}`);
        }
        assert.equal(replaceFirst(value, parsed, 'X'), expectedReplaceFirst(value, pattern, 'X'), `/ ${context}`);
        assert.equal(replaceAll(value, parsed, 'X', 1 << 20), expectedReplaceAll(value, pattern, 'X'), `// ${context}`);
      }
    }
  });

  test('an invalid escape is refused', () => {
    assert.throws(() => parsePattern('a\\b'), (err: unknown) => err instanceof PatternFailure && /invalid escape '\\b'/.test(err.message));
  });

  test('a pattern that backtracks for ever elsewhere takes linear time', () => {
    const value = 'a'.repeat(200_000);
    const started = Date.now();
    assert.equal(replaceAll(value, parsePattern('*a*a*a*a*a*b'), 'x', 1 << 20), value);
    assert.equal(trimSuffix(value, parsePattern('*a*a*a*a*a*b'), true), value);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  });
});
