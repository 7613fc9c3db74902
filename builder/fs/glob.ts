/**
 * COPY/ADD source patterns with the semantics of Go's `filepath.Match` on Unix, which BuildKit
 * uses: `*` and `?` never match `/`, `[...]` classes with ranges and `^` negation, and `\` quoting
 * the next character. A malformed pattern matches nothing: BuildKit ignores `filepath.Match`'s
 * error, so such a source behaves as a wildcard that matched no path.
 */

/** True when a path (or component) holds a wildcard that is not quoted with `\`. */
export function hasWildcard(pattern: string): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/** Whether `name` matches `pattern` as Go's `filepath.Match` decides; false for a malformed pattern. */
export function matchPattern(pattern: string, name: string): boolean {
  const p = Array.from(pattern);
  if (!isWellFormed(p)) return false;
  const s = Array.from(name);
  let si = 0;
  for (let pi = 0; pi < p.length; ) {
    const star = p[pi] === '*';
    while (p[pi] === '*') pi++;
    const chunkEnd = nextStar(p, pi);
    const last = chunkEnd === p.length;
    if (star && pi === chunkEnd) return !s.slice(si).includes('/');
    // Each chunk has a fixed length, so its leftmost match is the one to take (as Go does).
    let at = -1;
    for (let skip = si; skip <= s.length; skip++) {
      const end = matchChunk(p, pi, chunkEnd, s, skip);
      if (end >= 0 && (!last || end === s.length)) {
        at = end;
        break;
      }
      if (!star || s[skip] === '/') break;
    }
    if (at < 0) return false;
    si = at;
    pi = chunkEnd;
  }
  return si === s.length;
}

/** Index of the next unquoted `*` outside a class, or the pattern's length. */
function nextStar(p: readonly string[], from: number): number {
  for (let i = from; i < p.length; i++) {
    if (p[i] === '*') return i;
    if (p[i] === '\\') i++;
    else if (p[i] === '[') i = readClass(p, i).end - 1;
  }
  return p.length;
}

/** Matches the star-free chunk `p[from..to)` at `s[si..]`: the index after the match, or -1. */
function matchChunk(p: readonly string[], from: number, to: number, s: readonly string[], si: number): number {
  for (let pi = from; pi < to; si++) {
    const ch = p[pi]!;
    if (si >= s.length) return -1;
    if (ch === '?') {
      if (s[si] === '/') return -1;
      pi++;
    } else if (ch === '[') {
      const cls = readClass(p, pi);
      if (cls.matches(s[si]!) === cls.negated) return -1;
      pi = cls.end;
    } else {
      const quoted = ch === '\\';
      if (s[si] !== (quoted ? p[pi + 1] : ch)) return -1;
      pi += quoted ? 2 : 1;
    }
  }
  return si;
}

interface CharClass {
  readonly negated: boolean;
  /** Index just past the closing `]`. */
  readonly end: number;
  matches(ch: string): boolean;
}

/** Reads the class opening at `p[start]`; throws on a syntax error (callers check well-formedness first). */
function readClass(p: readonly string[], start: number): CharClass {
  let i = start + 1;
  const negated = p[i] === '^';
  if (negated) i++;
  const ranges: [number, number][] = [];
  for (;;) {
    if (p[i] === ']' && ranges.length > 0) break;
    const lo = classChar(p, i);
    i = lo.next;
    let hi = lo;
    if (p[i] === '-') {
      hi = classChar(p, i + 1);
      i = hi.next;
    }
    ranges.push([lo.code, hi.code]);
  }
  return {
    negated,
    end: i + 1,
    matches: (ch) => {
      const code = ch.codePointAt(0)!;
      return ranges.some(([lo, hi]) => lo <= code && code <= hi);
    },
  };
}

class BadPattern extends Error {}

/** One character of a class (Go's `getEsc`): not `-` or `]`, `\` quoting, and something must follow it. */
function classChar(p: readonly string[], i: number): { code: number; next: number } {
  let ch = p[i];
  if (ch === undefined || ch === '-' || ch === ']') throw new BadPattern();
  if (ch === '\\') ch = p[++i];
  if (ch === undefined || i + 1 >= p.length) throw new BadPattern();
  return { code: ch.codePointAt(0)!, next: i + 1 };
}

/** Go rejects a pattern with an unfinished class or a trailing `\` wherever it appears. */
function isWellFormed(p: readonly string[]): boolean {
  try {
    for (let i = 0; i < p.length; i++) {
      if (p[i] === '\\') {
        if (++i >= p.length) return false;
      } else if (p[i] === '[') {
        i = readClass(p, i).end - 1;
      }
    }
    return true;
  } catch (err) {
    if (err instanceof BadPattern) return false;
    throw err;
  }
}
