/** Character classes of the reference parser, which is written in Go. */

/** Whitespace as Go's `unicode.IsSpace` defines it. */
const SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/;
const LEADING_SPACE = /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;
const TRAILING_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;

/** The separator of whitespace-delimited arguments: blanks, but not Unicode spaces or newlines. */
export const ARGUMENT_SEPARATOR = /[\t\v\f\r ]+/;

export function isSpace(ch: string): boolean {
  return SPACE.test(ch);
}

export function trimLeftSpace(text: string): string {
  return text.replace(LEADING_SPACE, '');
}

export function trimSpace(text: string): string {
  return trimLeftSpace(text).replace(TRAILING_SPACE, '');
}

/** Splits at the first run of blanks, as Go's `Regexp.Split(s, 2)` does. */
export function splitOnce(text: string): [string] | [string, string] {
  const match = ARGUMENT_SEPARATOR.exec(text);
  if (match === null) return [text];
  return [text.slice(0, match.index), text.slice(match.index + match[0].length)];
}
