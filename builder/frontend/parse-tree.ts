/**
 * The line scanner: reads a Dockerfile into syntax nodes exactly as BuildKit's parser does:
 * directives at the top, comments and blank lines skipped, continuation lines joined (comment
 * and blank lines inside a continuation dropped), heredoc bodies read after their line.
 */
import { SourceError } from '../../layers/errors.js';
import type { Heredoc } from '../model/dockerfile.js';
import type { SyntaxNode, SyntaxTree } from './instructions.js';
import { trimLeftSpace, trimSpace } from './parse-chars.js';
import { DirectiveState } from './parse-directives.js';
import { ParseFailure } from './parse-failure.js';
import { heredocMarkersInLine, type HeredocMarker } from './parse-heredoc.js';
import { buildNode, canContainHeredoc, type NodeDraft } from './parse-node.js';

export function parseSyntaxTree(text: string, fileName: string): SyntaxTree {
  return new LineScanner(text, fileName).scan();
}

/** Runs `action`, turning a `ParseFailure` into a `SourceError` at `line`. */
export function atLine<T>(file: string, line: number, action: () => T): T {
  try {
    return action();
  } catch (err) {
    if (err instanceof ParseFailure) throw new SourceError(file, line, err.message);
    throw err;
  }
}

class LineScanner {
  private readonly lines: string[];
  private next = 0;
  /** Lines consumed so far, which is also the 1-based number of the last one. */
  private lineNumber = 0;
  private readonly state = new DirectiveState();

  constructor(
    text: string,
    private readonly file: string,
  ) {
    this.lines = splitLines(text.replace(/^\ufeff/, ''));
  }

  scan(): SyntaxTree {
    const nodes: SyntaxNode[] = [];
    let comments: string[] = [];
    for (let raw = this.read(); raw !== undefined; raw = this.read()) {
      if (isComment(raw)) {
        const comment = trimSpace(raw.slice(1));
        comments = comment === '' ? [] : [...comments, comment];
      }
      const first = this.processLine(raw, true);
      if (first.directive) comments = comments.slice(0, -1);
      const startLine = this.lineNumber;
      let { text, ended } = this.trimContinuation(first.text);
      if (ended && text === '') continue;

      let logical = text;
      while (!ended) {
        const rawNext = this.read();
        if (rawNext === undefined) break;
        const { text: part } = this.processLine(rawNext, false);
        if (isComment(rawNext) || trimLeftSpace(trimNewline(part)) === '') continue;
        ({ text, ended } = this.trimContinuation(part));
        logical += text;
      }

      const node = atLine(this.file, startLine, () => buildNode(logical, this.state.escapeToken, comments));
      if (canContainHeredoc(node) && logical.includes('<<')) {
        const markers = atLine(this.file, startLine, () => heredocMarkersInLine(logical));
        for (const marker of markers) node.heredocs.push(this.readHeredoc(marker, startLine));
      }
      nodes.push(freezeNode(node, startLine, this.lineNumber));
      comments = [];
    }
    if (nodes.length === 0) {
      throw new SourceError(this.file, Math.max(this.lineNumber, 1), 'file with no instructions');
    }
    return Object.freeze({
      directives: Object.freeze(this.state.directives),
      escapeToken: this.state.escapeToken,
      nodes: Object.freeze(nodes),
    });
  }

  private read(): string | undefined {
    const line = this.lines[this.next];
    if (line !== undefined) {
      this.next++;
      this.lineNumber++;
    }
    return line;
  }

  /** Drops the line ending (and leading whitespace of a first line); a comment becomes empty. */
  private processLine(raw: string, firstLine: boolean): { text: string; directive: boolean } {
    let text = trimNewline(raw);
    if (firstLine) text = trimLeftSpace(text);
    const directive = atLine(this.file, this.lineNumber, () => this.state.inspect(text));
    return { text: isComment(text) ? '' : text, directive };
  }

  private trimContinuation(line: string): { text: string; ended: boolean } {
    const pattern = this.state.continuation;
    if (!pattern.test(line)) return { text: line, ended: true };
    return { text: line.replace(pattern, '$1'), ended: false };
  }

  /** Reads body lines up to the terminator; `<<-` terminators may be indented with tabs. */
  private readHeredoc(marker: HeredocMarker, startLine: number): Heredoc {
    let content = '';
    for (let raw = this.read(); raw !== undefined; raw = this.read()) {
      let candidate = trimNewline(raw);
      if (marker.chomp) candidate = candidate.replace(/^\t+/, '');
      if (candidate === marker.name) return Object.freeze({ ...marker, content });
      content += raw;
    }
    throw new SourceError(this.file, startLine, 'unterminated heredoc');
  }
}

/** Lines with their endings kept; a final line without `\n` is kept too. */
function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

function trimNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).startsWith('#');
}

function freezeNode(draft: NodeDraft, startLine: number, endLine: number): SyntaxNode {
  const node: SyntaxNode = {
    keyword: draft.keyword,
    flags: Object.freeze([...draft.flags]),
    args: Object.freeze([...draft.args]),
    json: draft.json,
    heredocs: Object.freeze([...draft.heredocs]),
    original: draft.original,
    comments: Object.freeze([...draft.comments]),
    startLine,
    endLine,
    ...(draft.subcommand ? { subcommand: freezeNode(draft.subcommand, startLine, endLine) } : {}),
  };
  return Object.freeze(node);
}
