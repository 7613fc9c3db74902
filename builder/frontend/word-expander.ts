/**
 * One expansion pass over one Dockerfile word: quotes, escapes, `$VAR` and `${VAR...}` with their
 * modifiers; ShellLex (shell-lex.ts) is the way in.
 */
import { parsePattern, replaceAll, replaceFirst, trimPrefix, trimSuffix } from './shell-pattern.js';
import { WordCollector } from './word-collector.js';

export type Environment = ReadonlyMap<string, string>;

/** The Dockerfile escape character: `\` by default, `` ` `` with `# escape=``. */
export type EscapeToken = '\\' | '`';

/** How the words are read; ShellLexOptions adds what applies to a whole call. */
export interface ExpansionOptions {
  /** Keep quote characters in the output instead of removing them. */
  rawQuotes?: boolean;
  /** Leave references to unset variables in the output, e.g. `${NAME:-x}`, instead of expanding them. */
  skipUnsetEnv?: boolean;
  /** Treat quote characters as ordinary characters. */
  skipProcessQuotes?: boolean;
}

/**
 * The longest a word may grow through expansion: 1 MiB, or its own written length if longer.
 * BuildKit sets no limit, and a variable that doubles on each line would grow until memory runs out.
 */
export const MAX_EXPANDED_WORD = 1 << 20;

/** How deep `${...}` may nest; each level is a few stack frames, and real files nest a handful. */
export const MAX_NESTING = 100;

export function mebibytes(length: number): string {
  return `${length / (1 << 20)} MiB`;
}

/** Internal failure; `ShellLex` turns it into a `TsbuildError` naming the whole word. */
export class ExpansionFailure extends Error {}

const MISSING_BRACE = "syntax error: missing '}'";

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

/** One expansion pass over one word; tracks the variables it looked up. */
export class WordExpander {
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
    private readonly options: ExpansionOptions,
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
