/**
 * Heredoc markers (`<<EOF`, `<<-EOF`, `3<<"EOF"`) in RUN, COPY and ADD lines. Marker words are
 * found with the shell lexer (always with `\` as escape, as the reference does); the body lines
 * are read by the line scanner.
 */
import { TsbuildError } from '../../layers/errors.js';
import type { Heredoc } from '../model/dockerfile.js';
import { ParseFailure } from './parse-failure.js';
import { ShellLex } from './shell-lex.js';

export type HeredocMarker = Omit<Heredoc, 'content'>;

/** Go's `\d` and `\s` are ASCII-only. */
const MARKER = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/;
const NO_ENV: ReadonlyMap<string, string> = new Map();
const lineLexer = new ShellLex('\\', { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
const nameLexer = new ShellLex('\\', { skipUnsetEnv: true });
const rawNameLexer = new ShellLex('\\', { rawQuotes: true, skipUnsetEnv: true });

/** The heredoc a single word opens, if it is a marker. */
export function parseHeredocMarker(word: string): HeredocMarker | undefined {
  const match = MARKER.exec(word);
  if (match === null) return undefined;
  const rest = match[3] ?? '';
  if (rest === '') return undefined;
  const words = lexWords(nameLexer, rest);
  if (words.length !== 1) return undefined;
  const rawWords = lexWords(rawNameLexer, rest);
  if (rawWords.length !== 1) {
    throw new ParseFailure(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  }
  const name = words[0] ?? '';
  return {
    name,
    // Quotes that lexing removed mean part of the delimiter was quoted: no expansion.
    expand: quoteCount(name) === quoteCount(rawWords[0] ?? ''),
    chomp: match[2] === '-',
    fileDescriptor: Number(match[1] ?? ''),
  };
}

/** Every heredoc marker in a logical line, in order; none when the line does not lex. */
export function heredocMarkersInLine(line: string): HeredocMarker[] {
  let words: string[];
  try {
    words = lineLexer.processWords(line, NO_ENV);
  } catch (err) {
    if (err instanceof TsbuildError) return [];
    throw err;
  }
  const markers: HeredocMarker[] = [];
  for (const word of words) {
    const marker = parseHeredocMarker(word);
    if (marker !== undefined) markers.push(marker);
  }
  return markers;
}

/** Strips leading tabs from every line, as `<<-` asks (lines end at `\n` only). */
export function chompHeredocContent(content: string): string {
  return content.replace(/(^|\n)\t+/g, '$1');
}

function lexWords(lexer: ShellLex, text: string): string[] {
  try {
    return lexer.processWords(text, NO_ENV);
  } catch (err) {
    if (err instanceof TsbuildError) throw new ParseFailure(err.message);
    throw err;
  }
}

function quoteCount(text: string): number {
  return text.split(/['"]/).length - 1;
}
