/**
 * Shell patterns for `${VAR#pattern}`, `${VAR%pattern}` and `${VAR/pattern/replacement}`: `*`
 * matches any string, `?` one character, `\` escapes `*`, `?` and `\`; bracket expressions are
 * not supported. As in BuildKit (Go regular expressions), wildcards do not match `\n`.
 *
 * Matching runs the pattern as a set of states over the value, one character at a time, so its
 * cost is at most the value's length times the pattern's, never the exponential backtracking a
 * regular expression such as `*a*a*a*b` costs on a long value. A budget bounds even that product.
 */

/** A pattern that cannot be used; the message is the reason. */
export class PatternFailure extends Error {}

type Token = { readonly kind: 'star' } | { readonly kind: 'any' } | { readonly kind: 'char'; readonly char: string };

/** A pattern read into tokens, one per code point of what it matches. */
export type Pattern = readonly Token[];

/** The most state steps one match may take: about a second of work. */
const MAX_STEPS = 50_000_000;

/** Reads a pattern; `\}` and `\/` only protect the delimiters of `${...}` and mean `}` and `/`. */
export function parsePattern(text: string): Pattern {
  const chars = Array.from(text);
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      // Consecutive stars match what one does.
      if (tokens[tokens.length - 1]?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (ch === '?') {
      tokens.push({ kind: 'any' });
    } else if (ch === '\\') {
      const escaped = chars[i + 1];
      if (escaped === '}' || escaped === '/') continue;
      if (escaped !== '*' && escaped !== '?' && escaped !== '\\') {
        throw new PatternFailure(`invalid pattern (${text}) in substitution: invalid escape '\\${escaped ?? ''}'`);
      }
      tokens.push({ kind: 'char', char: escaped });
      i++;
    } else {
      tokens.push({ kind: 'char', char: ch });
    }
  }
  return tokens;
}

/** Removes the shortest (or longest) prefix of `value` that matches. */
export function trimPrefix(value: string, pattern: Pattern, longest: boolean): string {
  const chars = Array.from(value);
  const end = anchoredMatch(chars, pattern, longest);
  return end === undefined ? value : chars.slice(end).join('');
}

/** Removes the shortest (or longest) suffix of `value` that matches: a prefix of both reversed. */
export function trimSuffix(value: string, pattern: Pattern, longest: boolean): string {
  const chars = Array.from(value);
  const end = anchoredMatch([...chars].reverse(), [...pattern].reverse(), longest);
  return end === undefined ? value : chars.slice(0, chars.length - end).join('');
}

/** Replaces the leftmost, longest match, if any. */
export function replaceFirst(value: string, pattern: Pattern, replacement: string): string {
  const chars = Array.from(value);
  const match = new Matcher(chars, pattern).find(0);
  if (!match) return value;
  return chars.slice(0, match.start).join('') + replacement + chars.slice(match.end).join('');
}

/**
 * Replaces every non-overlapping match the way Go's `ReplaceAllString` does: an empty match right
 * after a previous match is not replaced, and `$0`/`${0}` in the replacement stand for the match.
 * Stops adding once the result is longer than `maxLength`, which the caller then refuses.
 */
export function replaceAll(value: string, pattern: Pattern, replacement: string, maxLength: number): string {
  const chars = Array.from(value);
  const matcher = new Matcher(chars, pattern);
  let out = '';
  let lastEnd = 0;
  let searchFrom = 0;
  while (searchFrom <= chars.length) {
    const match = matcher.find(searchFrom);
    if (!match) break;
    out += chars.slice(lastEnd, match.start).join('');
    if (match.end > lastEnd || match.start === 0) out += expandTemplate(replacement, chars.slice(match.start, match.end).join(''));
    if (out.length > maxLength) return out;
    lastEnd = match.end;
    searchFrom = Math.max(match.end, searchFrom + 1);
  }
  return out + chars.slice(lastEnd).join('');
}

/**
 * Applies Go's replacement template syntax: `$$` is a dollar sign, `$name` and `${name}` name a
 * capture group. Shell patterns have no groups, so only group 0 (the whole match) is non-empty.
 * A `$` not followed by a valid reference is kept as is.
 */
function expandTemplate(template: string, match: string): string {
  return template.replace(/\$(?:(\$)|\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/gu, (_all, dollar?: string, braced?: string, bare?: string) => {
    if (dollar) return '$';
    return (braced ?? bare) === '0' ? match : '';
  });
}

/** Where a match of the pattern from the start of `chars` ends: the shortest or the longest. */
function anchoredMatch(chars: readonly string[], pattern: Pattern, longest: boolean): number | undefined {
  const matcher = new Matcher(chars, pattern);
  let found: number | undefined;
  matcher.run(0, false, (_start, end) => {
    found = end;
    return longest;
  });
  return found;
}

/**
 * The pattern as a set of states over a value. State k means "the first k tokens matched"; each
 * state remembers the earliest position a match reaching it started from, which is all a leftmost
 * match needs, since what can follow depends only on the state.
 */
class Matcher {
  private steps = 0;

  constructor(
    private readonly chars: readonly string[],
    private readonly tokens: Pattern,
  ) {}

  /** The leftmost match starting at or after `from`, and the longest of those. */
  find(from: number): { start: number; end: number } | undefined {
    let best: { start: number; end: number } | undefined;
    this.run(from, true, (start, end) => {
      if (!best || start < best.start || (start === best.start && end > best.end)) best = { start, end };
      return true;
    });
    return best;
  }

  /**
   * Steps through the value from `from`; a new match may begin at every position when `unanchored`
   * and until one is found. `onMatch(start, end)` is called for each match end, in order, and
   * returns whether to go on looking for longer ones.
   */
  run(from: number, unanchored: boolean, onMatch: (start: number, end: number) => boolean): void {
    const last = this.tokens.length;
    // The live states, each with the earliest start of a partial match in it.
    let states = new Map<number, number>();
    let matchedStart = -1;
    for (let pos = from; ; pos++) {
      if (matchedStart < 0 && (unanchored || pos === from) && !states.has(0)) states.set(0, pos);
      this.close(states);
      const start = states.get(last);
      if (start !== undefined && (matchedStart < 0 || start <= matchedStart)) {
        matchedStart = start;
        if (!onMatch(start, pos)) return;
      }
      if (matchedStart >= 0) {
        // A match that starts later can no longer be the leftmost.
        for (const [k, begun] of states) if (begun > matchedStart) states.delete(k);
      }
      if (pos >= this.chars.length) return;
      states = this.step(states, this.chars[pos]!);
      if (states.size === 0 && (matchedStart >= 0 || !unanchored)) return;
    }
  }

  /** A star may match nothing: whatever reaches it also reaches the state after it. */
  private close(states: Map<number, number>): void {
    // Stars never follow stars, so one pass over the states is enough.
    for (const [k, start] of [...states]) {
      if (this.tokens[k]?.kind === 'star') setEarliest(states, k + 1, start);
    }
  }

  private step(states: ReadonlyMap<number, number>, char: string): Map<number, number> {
    const next = new Map<number, number>();
    this.steps += states.size;
    if (this.steps > MAX_STEPS) throw new PatternFailure(`pattern takes too long to match a value of ${this.chars.length} characters`);
    for (const [k, start] of states) {
      const token = this.tokens[k];
      if (token === undefined) continue;
      if (token.kind === 'star') {
        if (char !== '\n') setEarliest(next, k, start);
      } else if (token.kind === 'any' ? char !== '\n' : token.char === char) {
        setEarliest(next, k + 1, start);
      }
    }
    return next;
  }
}

function setEarliest(states: Map<number, number>, state: number, start: number): void {
  const current = states.get(state);
  if (current === undefined || start < current) states.set(state, start);
}
