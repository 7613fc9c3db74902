import { TsbuildError } from '../../layers/errors.js';

/** True when a path component uses Go `filepath.Match` wildcard syntax. */
export function hasWildcard(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/**
 * Compiles one path component of a Go `filepath.Match` pattern (`*`, `?`, `[a-z]`, `[^a]`, `\x`)
 * into an anchored regular expression. Wildcards never match `/`.
 */
export function compileComponentPattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '\\') {
      i++;
      if (i >= pattern.length) throw badPattern(pattern);
      source += escapeRegExp(pattern[i]!);
    } else if (ch === '[') {
      const end = classEnd(pattern, i);
      source += compileClass(pattern.slice(i + 1, end), pattern);
      i = end;
    } else source += escapeRegExp(ch);
  }
  return new RegExp(`^${source}$`, 'u');
}

function classEnd(pattern: string, start: number): number {
  let i = start + 1;
  if (pattern[i] === '^') i++;
  for (let first = true; i < pattern.length; i++, first = false) {
    if (pattern[i] === '\\') i++;
    else if (pattern[i] === ']' && !first) return i;
  }
  throw badPattern(pattern);
}

function compileClass(body: string, pattern: string): string {
  const negate = body.startsWith('^');
  const chars = negate ? body.slice(1) : body;
  if (chars === '') throw badPattern(pattern);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i]!;
    if (ch === '\\') ch = chars[++i] ?? '';
    if (ch === '' || (ch === '-' && out === '')) throw badPattern(pattern);
    out += ch === '-' && i > 0 && i < chars.length - 1 ? '-' : escapeRegExp(ch);
  }
  return negate ? `[^/${out}]` : `[${out}]`;
}

function escapeRegExp(ch: string): string {
  return ch.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function badPattern(pattern: string): TsbuildError {
  return new TsbuildError('BAD_PATTERN', `syntax error in pattern: ${pattern}`);
}
