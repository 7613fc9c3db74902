/**
 * Shell-like word expansion for Dockerfile instruction arguments, matching the behaviour of
 * BuildKit's Dockerfile frontend on Unix: quote removal, the escape character, `$VAR` and
 * `${VAR...}` substitution (with the `-`, `+`, `?`, `#`, `%` and `/` modifiers) and splitting
 * of the expanded text into words.
 */
import { TsbuildError } from '../../layers/errors.js';
import { parsePattern, PatternFailure, replaceAll, replaceFirst, trimPrefix, trimSuffix } from './shell-pattern.js';

export type Environment = ReadonlyMap<string, string>;

/** The Dockerfile escape character: `\` by default, `` ` `` with `# escape=``. */
export type EscapeToken = '\\' | '`';

export interface ShellLexOptions {
  /** Keep quote characters in the output instead of removing them. */
  rawQuotes?: boolean;
  /** Keep escape characters in the output instead of removing them. */
  rawEscapes?: boolean;
  /** Leave references to unset variables in the output, e.g. `${NAME:-x}`, instead of expanding them. */
  skipUnsetEnv?: boolean;
  /** Treat quote characters as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Counts the text every expansion produces, across lexers that share it. */
  budget?: ExpansionBudget;
}

/**
 * The longest a word may grow through expansion: 1 MiB, or its own written length if longer.
 * BuildKit sets no limit, and a variable that doubles on each line would grow until memory runs out.
 */
export const MAX_EXPANDED_WORD = 1 << 20;

/** How deep `${...}` may nest; each level is a few stack frames, and real files nest a handful. */
export const MAX_NESTING = 100;

/** The most text the expansions of one build may produce together: 64 MiB. */
export const MAX_EXPANDED_TOTAL = 64 << 20;

/** What expansion may still produce; one per build, shared by its lexers. */
export class ExpansionBudget {
  private used = 0;

  constructor(private readonly limit: number = MAX_EXPANDED_TOTAL) {}

  charge(length: number): void {
    this.used += length;
    if (this.used > this.limit) {
      throw new TsbuildError('EXPANSION_LIMIT', `expanded words add up to more than ${mebibytes(this.limit)}, the limit for one build`);
    }
  }
}

function mebibytes(length: number): string {
  return `${length / (1 << 20)} MiB`;
}

export interface ExpansionResult {
  /** The expanded word, with the whitespace between words kept. */
  result: string;
  /** The expanded word split into words; quoted and escaped whitespace does not split. */
  words: string[];
  /** Referenced variable names that were set in the environment. */
  matched: Set<string>;
  /** Referenced variable names that were not set. */
  unmatched: Set<string>;
}

export class ShellLex {
  constructor(
    readonly escapeToken: EscapeToken = '\\',
    private readonly options: ShellLexOptions = {},
  ) {}

  /** Expands one word: quotes removed, variables substituted. */
  processWord(word: string, env: Environment): string {
    return this.processWordWithMatches(word, env).result;
  }

  /** Expands, then splits into words at unquoted, unescaped white space. */
  processWords(word: string, env: Environment): string[] {
    return this.processWordWithMatches(word, env).words;
  }

  /** Expands one word and reports which variable names it referenced. */
  processWordWithMatches(word: string, env: Environment): ExpansionResult {
    const expander = new WordExpander(word, env, this.escapeToken, this.options);
    try {
      const { text, words } = expander.expandUntil(undefined, this.options.rawEscapes ?? false);
      this.options.budget?.charge(text.length);
      return { result: text, words, matched: expander.matched, unmatched: expander.unmatched };
    } catch (err) {
      if (err instanceof ExpansionFailure || err instanceof PatternFailure) {
        throw new TsbuildError('EXPANSION', `failed to process ${JSON.stringify(abbreviate(word))}: ${err.message}`);
      }
      throw err;
    }
  }
}

/** A word short enough to quote in a one-line message. */
function abbreviate(word: string): string {
  return word.length <= 100 ? word : `${word.slice(0, 60)}...(${word.length} characters)`;
}

/** Internal failure; `ShellLex` turns it into a `TsbuildError` naming the whole word. */
class ExpansionFailure extends Error {}

const MISSING_BRACE = "syntax error: missing '}'";

/** Whitespace as Go's `unicode.IsSpace` defines it. */
const SPACE_CLASS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const SPACE = new RegExp(`^${SPACE_CLASS}$`, 'u');
const SPACE_RUN = new RegExp(`${SPACE_CLASS}+`, 'gu');
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;

/** Shell special parameters (`$@`, `$#`, ...); always unset in a Dockerfile. */
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Splits text into code points; a leading byte order mark is dropped, as the reference scanner does. */
function codePoints(text: string): string[] {
  const chars = Array.from(text);
  if (chars[0] === '\ufeff') chars.shift();
  return chars;
}

/**
 * Collects words while the expanded text is produced. Characters that came from variable values
 * or plain text split on whitespace; quoted and escaped characters never do.
 */
class WordCollector {
  private readonly words: string[] = [];
  private buffer = '';
  private inWord = false;

  addChar(ch: string): void {
    if (SPACE.test(ch)) this.endWord();
    else this.addRawChar(ch);
  }

  private endWord(): void {
    if (this.inWord && this.buffer !== '') {
      this.words.push(this.buffer);
      this.buffer = '';
      this.inWord = false;
    }
  }

  addRawChar(ch: string): void {
    this.buffer += ch;
    this.inWord = true;
  }

  /** As `addChar` for each character, a run at a time: a variable's value may be long. */
  addString(text: string): void {
    let last = 0;
    for (const space of text.matchAll(SPACE_RUN)) {
      if (space.index > last) this.addRawString(text.slice(last, space.index));
      this.endWord();
      last = space.index + space[0].length;
    }
    if (last < text.length) this.addRawString(text.slice(last));
  }

  addRawString(text: string): void {
    this.buffer += text;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buffer !== '') this.words.push(this.buffer);
    return this.words;
  }
}

/** One expansion pass over one word; tracks the variables it looked up. */
class WordExpander {
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly chars: string[];
  private pos = 0;
  /** Whether escape characters are currently kept; pattern words of `#`, `%` and `/` keep them. */
  private rawEscapes = false;
  private readonly maxLength: number;
  /** How many `${...}` enclose the current position. */
  private nesting = 0;

  constructor(
    source: string,
    private readonly env: Environment,
    private readonly escape: EscapeToken,
    private readonly options: ShellLexOptions,
  ) {
    this.chars = codePoints(source);
    this.maxLength = Math.max(MAX_EXPANDED_WORD, source.length);
  }

  /** Fails once text being built grows past the limit, before it can grow further. */
  private checkLength(text: string): string {
    if (text.length > this.maxLength) {
      throw new ExpansionFailure(`expanded word is longer than ${mebibytes(MAX_EXPANDED_WORD)} (${MAX_EXPANDED_WORD} characters), the limit for one word`);
    }
    return text;
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /**
   * Expands from the current position up to `stop` (consumed) or, when `stop` is undefined, to the
   * end of the input. `rawEscapes` applies to this span and everything nested in it.
   */
  expandUntil(stop: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    const outerRawEscapes = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      return this.expandSpan(stop);
    } finally {
      this.rawEscapes = outerRawEscapes;
    }
  }

  private expandSpan(stop: string | undefined): { text: string; words: string[] } {
    const quotes = !this.options.skipProcessQuotes;
    // Each span collects its own words, so a nested `${...}` cannot drop the text gathered
    // before it (current BuildKit shares one buffer and loses `pre` in `pre${X:-a}`).
    const words = new WordCollector();
    let text = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (ch === stop) {
        this.next();
        return { text, words: words.finish() };
      }
      if (ch === '$') {
        const value = this.expandDollar();
        text = this.checkLength(text + value);
        words.addString(value);
      } else if (ch === '<' || (quotes && (ch === "'" || ch === '"'))) {
        const part = ch === '<' ? this.readPossibleHeredoc() : ch === "'" ? this.readSingleQuoted() : this.readDoubleQuoted();
        text = this.checkLength(text + part);
        words.addRawString(part);
      } else {
        this.next();
        if (ch === this.escape) {
          if (this.rawEscapes) {
            words.addRawChar(ch);
            text += ch;
          }
          const escaped = this.next();
          // An escape character at the very end is dropped.
          if (escaped === undefined) break;
          words.addRawChar(escaped);
          text += escaped;
        } else {
          words.addChar(ch);
          text += ch;
        }
      }
    }
    if (stop !== undefined) {
      throw new ExpansionFailure(`unexpected end of statement while looking for matching ${stop}`);
    }
    return { text, words: words.finish() };
  }

  /** Single quotes: everything up to the next `'` is literal; there is no way to escape `'`. */
  private readSingleQuoted(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next()!;
    let out = raw ? open : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) {
        throw new ExpansionFailure('unexpected end of statement while looking for matching single-quote');
      }
      if (ch === "'") return raw ? out + ch : out;
      out += ch;
    }
  }

  /**
   * Double quotes: `$` expands; the escape character escapes only `"`, `$` and itself and is
   * kept literally before anything else.
   */
  private readDoubleQuoted(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next()!;
    let out = raw ? open : '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        throw new ExpansionFailure('unexpected end of statement while looking for matching double-quote');
      }
      if (ch === '"') {
        this.next();
        return raw ? out + ch : out;
      }
      if (ch === '$') {
        out = this.checkLength(out + this.expandDollar());
        continue;
      }
      let literal = this.next()!;
      if (literal === this.escape) {
        // In raw mode the reference writes the escape character here and again below when it
        // escapes nothing, so `"\t"` keeps two backslashes; kept for identical results.
        if (this.rawEscapes) out += literal;
        const following = this.peek();
        if (following === undefined) continue;
        if (following === '"' || following === '$' || following === this.escape) literal = this.next()!;
      }
      out += literal;
    }
  }

  /** `<<` starts a heredoc marker; whitespace after it is kept so the marker stays one word. */
  private readPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let out = '<<';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) {
      out += this.next();
    }
    return out;
  }

  /** Reads a variable name: digits only, one special parameter, or letters, digits and `_`. */
  private readName(): string {
    const first = this.peek();
    if (first === undefined) return '';
    if (DIGIT.test(first)) {
      let digits = '';
      for (let ch = this.peek(); ch !== undefined && DIGIT.test(ch); ch = this.peek()) digits += this.next();
      return digits;
    }
    if (SPECIAL_PARAMS.has(first)) return this.next()!;
    let name = '';
    for (let ch = this.peek(); ch !== undefined && (LETTER.test(ch) || DIGIT.test(ch) || ch === '_'); ch = this.peek()) {
      name += this.next();
    }
    return name;
  }

  private lookup(name: string): string | undefined {
    const value = this.env.get(name);
    (value === undefined ? this.unmatched : this.matched).add(name);
    return value;
  }

  /** Expands nested text up to `stop`, reporting `missingMessage` if the input ends first. */
  private expandNested(stop: string, rawEscapes: boolean, missingMessage: string): string {
    try {
      return this.expandUntil(stop, rawEscapes).text;
    } catch (err) {
      if (err instanceof ExpansionFailure && this.peek() === undefined) throw new ExpansionFailure(missingMessage);
      throw err;
    }
  }

  /** Expands `$NAME` or `${...}`; the current character is the `$`. */
  private expandDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.readName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return `$${name}`;
      return value ?? '';
    }

    this.next();
    if (this.nesting >= MAX_NESTING) throw new ExpansionFailure(`\${...} nested more than ${MAX_NESTING} deep`);
    this.nesting += 1;
    try {
      return this.expandBraced();
    } finally {
      this.nesting -= 1;
    }
  }

  /** Expands `${...}` after its `${`. */
  private expandBraced(): string {
    const first = this.peek();
    if (first === undefined) throw new ExpansionFailure(MISSING_BRACE);
    if (first === '{' || first === '}' || first === ':') throw new ExpansionFailure('syntax error: bad substitution');
    const name = this.readName();
    const op = this.next();
    switch (op) {
      case undefined:
        throw new ExpansionFailure(MISSING_BRACE);
      case '}': {
        const value = this.lookup(name);
        if (value === undefined && this.options.skipUnsetEnv) return `\${${name}}`;
        return value ?? '';
      }
      case ':':
      case '+':
      case '-':
      case '?':
      case '#':
      case '%':
        return this.expandModifier(name, op);
      case '/':
        return this.expandReplace(name);
      default:
        throw new ExpansionFailure(`unsupported modifier (${op}) in substitution`);
    }
  }

  /** `${NAME<op>word}` for `-`, `+`, `?`, `#`, `%`, `##`, `%%` and the `:` forms of `-`, `+`, `?`. */
  private expandModifier(name: string, first: string): string {
    const nullIsUnset = first === ':';
    const op = nullIsUnset ? this.next() : first;
    const opText = first + (nullIsUnset ? (op ?? '') : '');
    const isPattern = op === '#' || op === '%';
    if (nullIsUnset && isPattern) throw new ExpansionFailure(`unsupported modifier (${opText}) in substitution`);
    let word = this.expandNested('}', isPattern, MISSING_BRACE);

    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) return `\${${name}${opText}${word}}`;
    const empty = value === undefined || (nullIsUnset && value === '');
    switch (op) {
      case '-':
        return empty ? word : value!;
      case '+':
        return empty ? '' : word;
      case '?':
        if (value === undefined) throw new ExpansionFailure(`${name}: ${word || 'is not allowed to be unset'}`);
        if (empty) throw new ExpansionFailure(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        // A doubled operator (`##`, `%%`) removes the longest match, a single one the shortest.
        const longest = word.startsWith(op);
        if (longest) word = word.slice(1);
        const pattern = parsePattern(word);
        return op === '#' ? trimPrefix(value ?? '', pattern, longest) : trimSuffix(value ?? '', pattern, longest);
      }
      default:
        throw new ExpansionFailure(`unsupported modifier (${opText}) in substitution`);
    }
  }

  /** `${NAME/pattern/replacement}` (first match) and `${NAME//pattern/replacement}` (all matches). */
  private expandReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.expandNested('/', true, "syntax error: missing '/' in ${}");
    const replacement = this.expandNested('}', true, MISSING_BRACE);

    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) {
      // Written back as given; the reference drops the second `/` of `//` here.
      return `\${${name}${all ? '//' : '/'}${pattern}/${replacement}}`;
    }
    const compiled = parsePattern(pattern);
    return this.checkLength(all ? replaceAll(value ?? '', compiled, replacement, this.maxLength) : replaceFirst(value ?? '', compiled, replacement));
  }
}
