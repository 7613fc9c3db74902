import type { BuildEvent } from '../builder/index.js';
import { formatBytes, type StatusTerminal } from './transfer-status.js';

interface StepState {
  readonly name: string;
  readonly started: number;
  cached?: boolean;
  /** The last lines the step printed, shown under it while it runs. */
  readonly tail: string[];
}

interface TransferState {
  readonly label: string;
  bytes: number;
  total: number;
}

const TAIL_LINES = 6;
const FAILED_TAIL_LINES = 20;
const REDRAW_MS = 200;
const DIM = '\x1b[2m';
const BLUE = '\x1b[34m';
const RESET = '\x1b[0m';

/**
 * The live progress display on a terminal, in the manner of buildx: finished steps are printed once,
 * and below them a block of the running steps (with their elapsed time and last output lines) and
 * of the blobs moving is redrawn in place with ANSI cursor movements.
 */
export class LiveDisplay {
  private readonly started: number;
  private readonly running = new Map<number, StepState>();
  private readonly transfers = new Map<string, TransferState>();
  private finished = 0;
  /** Lines the live block took on the screen when it was last drawn. */
  private drawnLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly terminal: StatusTerminal,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  readonly listener = (event: BuildEvent): void => {
    const printed = this.apply(event);
    this.redraw(printed);
    if (this.running.size + this.transfers.size > 0) this.timer ??= setInterval(() => this.redraw([]), REDRAW_MS).unref();
    else this.stopTimer();
  };

  /** Ends the display: steps still running (the one that failed) are printed with their last output, then the final header. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopTimer();
    const failed = [...this.running.values()].flatMap((step) => [`${BLUE}=> ${step.name}${RESET}  ${seconds(this.now() - step.started)}`, ...step.tail.slice(-FAILED_TAIL_LINES).map((line) => `${DIM}   ${line}${RESET}`)]);
    const header = this.header(failed.length === 0 ? 'FINISHED' : 'FAILED');
    this.running.clear();
    this.transfers.clear();
    this.redraw([...failed, header]);
  }

  private apply(event: BuildEvent): string[] {
    switch (event.kind) {
      case 'step-start':
        this.running.set(event.step, { name: event.name, started: this.now(), tail: [] });
        return [];
      case 'step-cache': {
        const step = this.running.get(event.step);
        if (step) step.cached = event.cached;
        return [];
      }
      case 'step-output': {
        const step = this.running.get(event.step);
        if (step) step.tail.push(...event.text.replace(/\n$/, '').split('\n').map(printableLine));
        if (step && step.tail.length > FAILED_TAIL_LINES) step.tail.splice(0, step.tail.length - FAILED_TAIL_LINES);
        return [];
      }
      case 'step-done': {
        const step = this.running.get(event.step);
        this.running.delete(event.step);
        this.finished++;
        if (!step) return [];
        const size = event.layerBytes ? `  ${formatBytes(event.layerBytes)}` : '';
        return [`${BLUE}=> ${step.cached ? 'CACHED ' : ''}${step.name}${RESET}  ${event.seconds.toFixed(1)}s${size}`];
      }
      case 'transfer':
        return this.transfer(event);
      case 'note':
        return [`note: ${printableLine(event.message)}`];
      case 'exported':
        return [`${BLUE}=> exported ${event.what} ${event.digest}${RESET}`];
    }
  }

  private transfer(event: Extract<BuildEvent, { kind: 'transfer' }>): string[] {
    const key = `${event.direction} ${event.repository} ${event.digest}`;
    if (event.phase === 'start' || event.phase === 'progress' || event.phase === 'resume') {
      const entry = this.transfers.get(key) ?? { label: `${event.direction} ${event.repository} ${event.digest.slice(0, 19)}`, bytes: 0, total: event.total };
      entry.bytes = event.bytes;
      entry.total = event.total;
      this.transfers.set(key, entry);
      return [];
    }
    this.transfers.delete(key);
    return [`${BLUE}=> ${event.direction} ${event.repository} ${event.digest.slice(0, 19)} ${event.phase} ${formatBytes(event.total)}${RESET}`];
  }

  private header(state: string): string {
    return `[+] Building ${seconds(this.now() - this.started)} (${this.finished}/${this.finished + this.running.size}) ${state}`.trimEnd();
  }

  private liveLines(): string[] {
    const now = this.now();
    const steps = [...this.running.values()].flatMap((step) => [`=> ${step.name}  ${seconds(now - step.started)}`, ...step.tail.slice(-TAIL_LINES).map((line) => `${DIM}   ${line}${RESET}`)]);
    const moving = [...this.transfers.values()].map((t) => `=> ${t.label} ${formatBytes(t.bytes)} / ${formatBytes(t.total)}`);
    return [this.header(''), ...steps, ...moving];
  }

  /** Erases the live block, prints `lines` above it for good, and draws the block again. */
  private redraw(lines: readonly string[]): void {
    const width = Math.max(20, (this.terminal.columns?.() || 80) - 1);
    const live = this.running.size + this.transfers.size > 0 ? this.liveLines() : [];
    const erase = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F\x1b[J` : '';
    const body = [...lines, ...live].map((line) => `${fit(line, width)}\n`).join('');
    this.terminal.write(`${erase}${body}`);
    this.drawnLines = live.length;
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** A line of a step's output with control characters (its own colours, carriage returns) left out. */
function printableLine(text: string): string {
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
}

/** Cuts a line to the terminal's width, counting only visible characters, so that no line wraps. */
function fit(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const escape = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
    if (escape) {
      out += escape[0];
      i += escape[0].length - 1;
      continue;
    }
    if (visible === width) return `${out}${RESET}`;
    out += line[i];
    visible++;
  }
  return out;
}
