import type { BuildEvent, ProgressListener } from '../builder/progress.js';

export type ProgressMode = 'auto' | 'plain' | 'json';

/** Renders build events on stderr: numbered plain lines, or one JSON object per line. */
export function progressRenderer(mode: ProgressMode, write: (line: string) => void): ProgressListener {
  if (mode === 'json') return (event) => write(JSON.stringify(event));
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

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
