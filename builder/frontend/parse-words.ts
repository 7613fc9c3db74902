/**
 * Splitting a logical line into keyword, leading `--flags` and the rest, and the quote-aware
 * word splitter used by ENV, LABEL and ARG. Quotes stay in the words; only flags lose them.
 */
import { isSpace, splitOnce, trimSpace } from './parse-chars.js';

export interface SplitLine {
  readonly keyword: string;
  readonly flags: string[];
  /** Everything after the flags, trimmed. */
  readonly rest: string;
}

export function splitCommand(line: string, escape: string): SplitLine {
  const [keyword, afterKeyword] = splitOnce(trimSpace(line));
  if (afterKeyword === undefined) return { keyword, flags: [], rest: '' };
  const { flags, rest } = extractFlags(afterKeyword, escape);
  return { keyword, flags, rest: trimSpace(rest) };
}

/**
 * Takes the leading words that start with `--`, removing quotes and escapes from them. A bare
 * `--` ends the flags and is dropped.
 */
function extractFlags(line: string, escape: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const atEnd = pos === line.length;
    let ch = atEnd ? '' : line.charAt(pos);
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || line.charAt(pos + 1) !== '-') return { flags, rest: line.slice(pos) };
      phase = 'word';
    }
    if (atEnd) {
      if (word !== '--' && (blankOK || word !== '')) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        if (word === '--') return { flags, rest: line.slice(pos) };
        if (blankOK || word !== '') flags.push(word);
        phase = 'spaces';
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === escape) {
        if (pos + 1 === line.length) continue;
        ch = line.charAt(++pos);
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === escape) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line.charAt(++pos);
    }
    word += ch;
  }
  return { flags, rest: '' };
}

/** Whitespace-separated words; quoted parts and escaped characters do not split, and are kept as written. */
export function parseWords(rest: string, escape: string): string[] {
  const chars = Array.from(rest);
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    const atEnd = pos === chars.length;
    let ch = chars[pos] ?? '';
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (atEnd) {
      if (blankOK || word !== '') words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        if (blankOK || word !== '') words.push(word);
        phase = 'spaces';
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        ch = chars[++pos] ?? '';
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      ch = chars[++pos] ?? '';
    }
    word += ch;
  }
  return words;
}
