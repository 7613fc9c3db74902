/** Collects a stream's chunks and hands on whole lines, so step output is never split mid-line. */
export class LineBuffer {
  private pending = '';

  constructor(private readonly emit: (lines: string) => void) {}

  push(chunk: Buffer): void {
    const text = this.pending + chunk.toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) {
      this.pending = text;
      return;
    }
    this.pending = text.slice(end + 1);
    this.emit(text.slice(0, end + 1));
  }

  flush(): void {
    if (this.pending !== '') this.emit(`${this.pending}\n`);
    this.pending = '';
  }
}
