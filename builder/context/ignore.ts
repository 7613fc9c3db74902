/**
 * `.dockerignore` files and exclude patterns, with the semantics of moby/patternmatcher and its
 * `ignorefile` reader as used by BuildKit (also for `COPY --exclude`).
 *
 * A pattern is a slash-separated path where `*` matches any run of characters except `/`, `?`
 * one character except `/`, `[...]` a character class (`^` negates, `a-z` ranges), `\` escapes
 * the next character and `**` any number of whole directories (including none). A pattern that
 * starts with `!` re-includes what earlier patterns excluded; the last matching pattern wins, and
 * a path is excluded when it or one of its parent directories is.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/**
 * How one pattern is tested: a plain comparison when it has no wildcards (`exact`), a leading
 * path for `dir/**` (`prefix`), a trailing path for `**` followed by plain text (`suffix`),
 * else a regular expression.
 */
export type PatternKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

/** One compiled pattern of a {@link PatternMatcher}. */
export interface IgnorePattern {
  /** The pattern after trimming and path cleaning, without its leading `!`. */
  readonly text: string;
  /** True for a `!` pattern, which re-includes paths that earlier patterns excluded. */
  readonly exclusion: boolean;
  readonly kind: PatternKind;
  /** Whether the pattern matches this exact path (parent directories are not considered). */
  test(path: string): boolean;
}

/**
 * Reads the text of an ignore file into patterns: drops a UTF-8 byte order mark, comment lines
 * (`#` in the first column) and blank lines; trims each line, cleans it as a path and removes a
 * leading `/`, keeping a `!` prefix (so `! /a/../b` becomes `!b`).
 */
export function parseIgnoreFile(text: string): string[] {
  const patterns: string[] = [];
  for (const rawLine of text.replace(/^\uFEFF/, '').split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line.startsWith('#')) continue;
    let pattern = trimSpace(line);
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = trimSpace(pattern.slice(1));
    if (pattern !== '') {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

/**
 * Decides which paths a list of patterns excludes. Paths are slash-separated and relative to
 * the root the patterns apply to (the build context, or the source of a `COPY --exclude`).
 */
export class PatternMatcher {
  readonly patterns: readonly IgnorePattern[];
  /** True when some pattern is a `!` exception. */
  readonly hasExclusions: boolean;
  /** The literal leading paths of the `!` patterns, or undefined when one has wildcards. */
  private readonly exceptionPrefixes: readonly string[] | undefined;

  /** Throws `TsbuildError('IGNORE_PATTERN')` for a malformed pattern. Empty patterns are dropped. */
  constructor(patterns: readonly string[]) {
    const compiled: IgnorePattern[] = [];
    for (const raw of patterns) {
      const trimmed = trimSpace(raw);
      if (trimmed === '') continue;
      let text = cleanPath(trimmed);
      const exclusion = text.startsWith('!');
      if (exclusion) {
        if (text.length === 1) throw badPattern(raw, 'illegal exclusion pattern');
        text = text.slice(1);
      }
      compiled.push(compilePattern(text, exclusion, raw));
    }
    this.patterns = compiled;
    this.hasExclusions = compiled.some((p) => p.exclusion);
    const prefixes = compiled.filter((p) => p.exclusion).map((p) => withoutTrailingGlob(p.text));
    this.exceptionPrefixes = prefixes.some((p) => /[*?[\]^\\]/.test(p)) ? undefined : prefixes;
  }

  /** Whether the path, or one of its parent directories, is excluded. The root (`.`) never is. */
  matches(relPath: string): boolean {
    const file = cleanPath(relPath);
    if (file === '.') return false;
    const parents = parentPaths(file);
    let matched = false;
    for (const pattern of this.patterns) {
      // Shortcut: an inclusion cannot change an excluded path, nor an exception an included one.
      if (pattern.exclusion !== matched) continue;
      if (pattern.test(file) || parents.some((parent) => pattern.test(parent))) {
        matched = !pattern.exclusion;
      }
    }
    return matched;
  }

  /**
   * Whether a directory walker may skip this directory entirely: it is excluded and no `!`
   * pattern could re-include anything inside it. Conservative: any `!` pattern with wildcards
   * (other than a trailing `/*` or `/**`) keeps every excluded directory walked.
   */
  canSkipDir(relDir: string): boolean {
    if (this.exceptionPrefixes === undefined || !this.matches(relDir)) return false;
    const dirSlash = `${cleanPath(relDir)}/`;
    return !this.exceptionPrefixes.some((prefix) => `${prefix}/`.startsWith(dirSlash));
  }
}

/**
 * The patterns that apply to a build: BuildKit reads `<Dockerfile path>.dockerignore` beside the
 * Dockerfile when that file exists (even empty), otherwise `.dockerignore` at the root of the
 * context. No ignore file means no patterns. `dockerfilePath` is the Dockerfile's path on disk.
 */
export async function loadIgnorePatterns(contextDir: string, dockerfilePath: string): Promise<string[]> {
  for (const file of [`${dockerfilePath}.dockerignore`, join(contextDir, '.dockerignore')]) {
    const text = await readIfFile(file);
    if (text !== undefined) return parseIgnoreFile(text);
  }
  return [];
}

async function readIfFile(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw new TsbuildError('IGNORE_FILE', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Regular expression text for Go's `.*`, whose `.` matches anything but a newline. */
const ANY_RUN = '[^\\n]*';

/**
 * Compiles one cleaned pattern. The syntax accepted is that of Go's `filepath.Match`; the
 * kinds and the regular expression follow patternmatcher's translation of it.
 */
function compilePattern(text: string, exclusion: boolean, raw: string): IgnorePattern {
  const chars = Array.from(text);
  let kind: PatternKind = 'exact';
  let source = '';
  for (let i = 0; i < chars.length; i++) {
    const start = i;
    const ch = chars[i]!;
    if (ch === '*' && chars[i + 1] === '*') {
      i++;
      if (chars[i + 1] === '/') i++; // `**/` is read as `**`
      if (i === chars.length - 1) {
        // A trailing `**` matches everything below, as in .gitignore.
        if (kind === 'exact') kind = 'prefix';
        else {
          source += ANY_RUN;
          kind = 'regexp';
        }
      } else {
        source += `(?:${ANY_RUN}/)?`;
        kind = 'regexp';
      }
      if (start === 0) kind = 'suffix';
    } else if (ch === '*') {
      source += '[^/]*';
      kind = 'regexp';
    } else if (ch === '?') {
      source += '[^/]';
      kind = 'regexp';
    } else if (ch === '\\') {
      const escaped = chars[++i];
      if (escaped === undefined) throw badPattern(raw, 'trailing backslash');
      source += escapeLiteral(escaped);
      kind = 'regexp';
    } else if (ch === '[') {
      const cls = compileClass(chars, i, raw);
      source += cls.source;
      i = cls.end;
      kind = 'regexp';
    } else {
      if (ch === ']') kind = 'regexp';
      source += escapeLiteral(ch);
    }
  }
  return { text, exclusion, kind, test: tester(kind, text, source) };
}

function tester(kind: PatternKind, text: string, source: string): (path: string) => boolean {
  switch (kind) {
    case 'exact':
      return (path) => path === text;
    case 'prefix': {
      const prefix = text.slice(0, -2);
      return (path) => path.startsWith(prefix);
    }
    case 'suffix': {
      const suffix = text.slice(2);
      // `**/foo` also matches `foo` itself.
      return (path) => path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    case 'regexp': {
      const re = new RegExp(`^${source}$`, 'u');
      return (path) => re.test(path);
    }
  }
}

/**
 * Compiles the class starting at `chars[open]` (`[`) following `filepath.Match`: at least one
 * item, each a character or `\`-escaped character, optionally `-` and a second one for a range;
 * a `-` or `]` cannot start an item. Returns the regular expression and the index of the `]`.
 */
function compileClass(chars: readonly string[], open: number, raw: string): { source: string; end: number } {
  let i = open + 1;
  const negated = chars[i] === '^';
  if (negated) i++;
  const classChar = (): number => {
    let ch = chars[i];
    if (ch === '-' || ch === ']') throw badPattern(raw, `unexpected '${ch}' in character class`);
    if (ch === '\\') ch = chars[++i];
    if (ch === undefined || i + 1 >= chars.length) throw badPattern(raw, 'unterminated character class');
    i++;
    return ch.codePointAt(0)!;
  };
  let items = '';
  while (!(chars[i] === ']' && items !== '')) {
    const lo = classChar();
    let hi = lo;
    if (chars[i] === '-') {
      i++;
      hi = classChar();
      if (hi < lo) throw badPattern(raw, 'invalid character class range');
    }
    items += hi === lo ? codePoint(lo) : `${codePoint(lo)}-${codePoint(hi)}`;
  }
  return { source: `[${negated ? '^' : ''}${items}]`, end: i };
}

function codePoint(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function escapeLiteral(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function badPattern(raw: string, reason: string): TsbuildError {
  return new TsbuildError('IGNORE_PATTERN', `invalid pattern ${JSON.stringify(raw)}: ${reason}`);
}

/** The exception pattern minus a trailing `/**` or `/*`, as the leading path it can re-include. */
function withoutTrailingGlob(text: string): string {
  if (text.endsWith('/**')) text = text.slice(0, -3);
  if (text.endsWith('/*')) text = text.slice(0, -2);
  return text;
}

/** `a/b/c` → [`a`, `a/b`]; a rooted path starts with `` and `/a` as Go's parent walk does. */
function parentPaths(file: string): string[] {
  const dir = file.includes('/') ? cleanPath(file.slice(0, file.lastIndexOf('/') + 1)) : '.';
  if (dir === '.') return [];
  const parts = dir.split('/');
  return parts.map((_, n) => parts.slice(0, n + 1).join('/'));
}

/**
 * Lexical path cleaning as Go's `path.Clean`: collapses `//`, drops `.` elements and resolves
 * `..` against the element before it; `""` becomes `.` and trailing slashes go.
 */
function cleanPath(p: string): string {
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..') out.push(part);
    else if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else if (!rooted) out.push(part);
  }
  const cleaned = (rooted ? '/' : '') + out.join('/');
  return cleaned === '' ? '.' : cleaned;
}

/** Unicode White_Space, which Go's `strings.TrimSpace` trims (unlike JS, not U+FEFF). */
const GO_SPACE = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const EDGE_SPACE = new RegExp(`^${GO_SPACE}+|${GO_SPACE}+$`, 'g');

function trimSpace(s: string): string {
  return s.replace(EDGE_SPACE, '');
}
