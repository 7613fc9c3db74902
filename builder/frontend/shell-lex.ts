/**
 * Shell-like word expansion for Dockerfile instruction arguments, matching the behaviour of
 * BuildKit's Dockerfile frontend on Unix: quote removal, the escape character, `$VAR` and
 * `${VAR...}` substitution (with the `-`, `+`, `?`, `#`, `%` and `/` modifiers) and splitting
 * of the expanded text into words.
 */
import { TsbuildError } from '../../layers/errors.js';
import { PatternFailure } from './shell-pattern.js';
import { ExpansionFailure, mebibytes, WordExpander, type Environment, type EscapeToken, type ExpansionOptions } from './word-expander.js';

export type { Environment, EscapeToken };

export interface ShellLexOptions extends ExpansionOptions {
  /** Keep escape characters in the output instead of removing them. */
  rawEscapes?: boolean;
  /** Counts the text every expansion produces, across lexers that share it. */
  budget?: ExpansionBudget;
}

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
