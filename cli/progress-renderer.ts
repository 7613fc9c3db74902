import type { BuildEvent, ProgressListener } from '../builder/index.js';
import { LiveDisplay } from './progress-tty.js';
import { formatBytes, TransferStatus, type StatusTerminal } from './transfer-status.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json';

/** A progress display: the listener the build reports to, and `close` once the build has ended. */
export interface ProgressDisplay {
  readonly listener: ProgressListener;
  close(): void;
}

/**
 * Renders build events on stderr: one JSON object per line (`json`), numbered plain lines
 * (`plain`, or `auto`/`tty` off a terminal), or on a terminal (`tty`, `auto`) a live display that
 * redraws the running steps in place. With `--explain-cache` on a terminal, plain lines are kept
 * under a live status line of transfers, since the explanations are meant to be read in full.
 */
export function progressRenderer(mode: ProgressMode, write: (line: string) => void, terminal?: StatusTerminal, explainCache = false): ProgressDisplay {
  const close = (): void => {};
  if (mode === 'json') return { listener: (event) => write(JSON.stringify(event)), close };
  if (mode !== 'plain' && terminal && !explainCache) {
    const display = new LiveDisplay(terminal);
    return { listener: display.listener, close: () => display.close() };
  }
  if (mode !== 'plain' && terminal) {
    const status = new TransferStatus(terminal);
    const lines = plainLines((line) => status.print(line), explainCache);
    return { listener: (event) => (event.kind === 'transfer' ? status.update(event) : lines(event)), close };
  }
  return { listener: plainLines(write, explainCache), close };
}

function plainLines(write: (line: string) => void, explainCache: boolean): ProgressListener {
  return (event: BuildEvent) => {
    switch (event.kind) {
      case 'note':
        write(`note: ${event.message}`);
        break;
      case 'step-start':
        write(`#${event.step} ${event.name}`);
        break;
      case 'step-output':
        for (const line of event.text.replace(/\n$/, '').split('\n')) write(`#${event.step} ${line}`);
        break;
      case 'step-cache':
        if (event.cached) write(`#${event.step} CACHED`);
        else {
          write(`#${event.step} cache miss: ${event.summary}`);
          if (explainCache) for (const line of event.differences) write(`#${event.step}   ${line}`);
        }
        break;
      case 'step-done':
        write(`#${event.step} DONE ${event.seconds.toFixed(1)}s${event.layerBytes ? ` ${formatBytes(event.layerBytes)}` : ''}`);
        break;
      case 'transfer':
        if (event.phase !== 'progress') write(`${event.direction} ${event.repository} ${event.digest.slice(0, 19)} ${event.phase} ${formatBytes(event.bytes)}/${formatBytes(event.total)}`);
        break;
      case 'exported':
        write(`exported ${event.what} ${event.digest}`);
        break;
    }
  };
}
