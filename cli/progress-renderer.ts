import type { BuildEvent, ProgressListener } from '../builder/index.js';
import { formatBytes, TransferStatus, type StatusTerminal } from './transfer-status.js';

export type ProgressMode = 'auto' | 'plain' | 'json';

/**
 * Renders build events on stderr: one JSON object per line (`json`), numbered plain lines
 * (`plain`, or `auto` off a terminal), or on a terminal plain lines under a live status line of
 * blob transfers with bytes and rate.
 */
export function progressRenderer(mode: ProgressMode, write: (line: string) => void, terminal?: StatusTerminal, explainCache = false): ProgressListener {
  if (mode === 'json') return (event) => write(JSON.stringify(event));
  if (mode === 'auto' && terminal) {
    const status = new TransferStatus(terminal);
    const lines = plainLines((line) => status.print(line), explainCache);
    return (event) => (event.kind === 'transfer' ? status.update(event) : lines(event));
  }
  return plainLines(write, explainCache);
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
        write(`#${event.step} DONE ${event.seconds.toFixed(1)}s`);
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
