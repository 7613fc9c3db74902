import type { BuildEvent } from '../builder/index.js';

type TransferEvent = Extract<BuildEvent, { kind: 'transfer' }>;

/** A terminal to redraw a status line on. */
export interface StatusTerminal {
  write(raw: string): void;
}

interface Active {
  readonly label: string;
  readonly started: number;
  bytes: number;
  total: number;
}

/**
 * The live status line of blob transfers on a terminal: one entry per blob moving, with bytes
 * and rate, redrawn in place. Other output is printed above it.
 */
export class TransferStatus {
  private readonly active = new Map<string, Active>();
  private shown = false;

  constructor(
    private readonly terminal: StatusTerminal,
    private readonly now: () => number = Date.now,
  ) {}

  /** Prints a finished line above the status line. */
  print(line: string): void {
    this.clear();
    this.terminal.write(`${line}\n`);
    this.draw();
  }

  update(event: TransferEvent): void {
    const key = `${event.direction} ${event.repository} ${event.digest}`;
    if (event.phase === 'start' || event.phase === 'progress' || event.phase === 'resume') {
      const entry = this.active.get(key) ?? { label: `${event.direction} ${event.digest.slice(7, 19)}`, started: this.now(), bytes: 0, total: event.total };
      entry.bytes = event.bytes;
      entry.total = event.total;
      this.active.set(key, entry);
      this.clear();
      this.draw();
      return;
    }
    const entry = this.active.get(key);
    this.active.delete(key);
    const rate = entry ? ` at ${formatRate(event.bytes, this.now() - entry.started)}` : '';
    this.print(`${event.direction} ${event.repository} ${event.digest.slice(0, 19)} ${event.phase} ${formatBytes(event.total)}${event.phase === 'done' ? rate : ''}`);
  }

  private clear(): void {
    if (this.shown) this.terminal.write('\r\x1b[2K');
    this.shown = false;
  }

  private draw(): void {
    if (this.active.size === 0) return;
    const parts = [...this.active.values()].map((a) => `${a.label} ${formatBytes(a.bytes)}/${formatBytes(a.total)} ${formatRate(a.bytes, this.now() - a.started)}`);
    this.terminal.write(parts.join(' | '));
    this.shown = true;
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function formatRate(bytes: number, ms: number): string {
  return `${formatBytes(ms > 0 ? Math.round((bytes * 1000) / ms) : 0)}/s`;
}
