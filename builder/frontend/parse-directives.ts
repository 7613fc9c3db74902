/**
 * Parser directives (`# escape=`\``, `# syntax=...`, `# check=...`) and the escape token they
 * control. Directives count only in the comment lines at the very top of the file: the first
 * line that is not a known directive (a blank line, another comment, an instruction) ends them.
 */
import type { EscapeToken, ParserDirectives } from './instructions.js';
import { trimLeftSpace } from './parse-chars.js';
import { ParseFailure } from './parse-failure.js';

/** Go's `\s` is ASCII-only: tab, newline, form feed, carriage return, space. */
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;
const KNOWN = new Set<keyof ParserDirectives>(['syntax', 'escape', 'check']);

/** The directive state of one parse: what was seen so far and the escape token in force. */
export class DirectiveState {
  escapeToken: EscapeToken = '\\';
  /** Matches a line ending in a continuation; `$1` is the text to keep. */
  continuation = continuationPattern('\\');
  private readonly values: { -readonly [K in keyof ParserDirectives]: string } = {};
  private done = false;

  get directives(): ParserDirectives {
    return { ...this.values };
  }

  /**
   * Looks at one line (newline and leading whitespace already removed); records it and returns
   * true when it is a directive.
   */
  inspect(line: string): boolean {
    if (this.done) return false;
    const match = line.startsWith('#') ? DIRECTIVE.exec(trimLeftSpace(line.slice(1))) : null;
    const name = match?.[1]?.toLowerCase();
    if (match === null || name === undefined || !KNOWN.has(name as keyof ParserDirectives)) {
      this.done = true;
      return false;
    }
    const key = name as keyof ParserDirectives;
    if (this.values[key] !== undefined) throw new ParseFailure(`only one ${key} parser directive can be used`);
    const value = match[2] ?? '';
    this.values[key] = value;
    if (key === 'escape') this.setEscapeToken(value);
    return true;
  }

  private setEscapeToken(value: string): void {
    if (value !== '\\' && value !== '`') {
      throw new ParseFailure(`invalid escape token '${value}' does not match \` or \\`);
    }
    this.escapeToken = value;
    this.continuation = continuationPattern(value);
  }
}

/**
 * A line continues when it ends with the escape token and optional blanks, unless the token is
 * itself escaped (only a single preceding escape token is recognised, as in the reference).
 */
function continuationPattern(token: EscapeToken): RegExp {
  const t = token === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${t}])${t}[ \\t]*$|^${t}[ \\t]*$`);
}
