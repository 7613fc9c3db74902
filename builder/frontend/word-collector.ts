/** The words of an expansion, split as the shell splits them. */

/** Whitespace as Go's `unicode.IsSpace` defines it. */
const SPACE_CLASS = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const SPACE = new RegExp(`^${SPACE_CLASS}$`, 'u');
const SPACE_RUN = new RegExp(`${SPACE_CLASS}+`, 'gu');

/**
 * Collects words while the expanded text is produced. Characters that came from variable values
 * or plain text split on whitespace; quoted and escaped characters never do.
 */
export class WordCollector {
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
