/** Go's `strconv.Quote` (and `%q`), which BuildKit's dumps and error messages use. */

/** Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

const NAMED_ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
};

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

function quoteChar(ch: string): string {
  if (ch === '"' || ch === '\\') return `\\${ch}`;
  if (PRINTABLE.test(ch)) return ch;
  const named = NAMED_ESCAPES[ch];
  if (named !== undefined) return named;
  const code = ch.codePointAt(0) ?? 0;
  if (code < 0x20 || code === 0x7f) return `\\x${hex(code, 2)}`;
  if (code < 0x10000) return `\\u${hex(code, 4)}`;
  return `\\U${hex(code, 8)}`;
}

/** `"text"` with Go's escapes, e.g. `\x00`, `\u00a0`, `\U0001f600`. */
export function goQuote(text: string): string {
  let out = '"';
  for (const ch of text) out += quoteChar(ch);
  return `${out}"`;
}

/** A string list as Go's `%q` prints it: `["a" "b"]`. */
export function goQuoteList(items: readonly string[]): string {
  return `[${items.map(goQuote).join(' ')}]`;
}
