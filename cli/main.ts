#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { TsbuildError } from '../layers/errors.js';

// Answered before the CLI and the library load, so it costs no more than starting node.
if (process.argv[2] === '--version' && process.argv.length === 3) {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`tsbuild ${manifest.version}\n`);
} else {
  const { run } = await import('./run.js');
  const interrupt = new AbortController();
  const stop = (): void => interrupt.abort(new TsbuildError('INTERRUPTED', 'build interrupted'));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  process.exitCode = await run(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    signal: interrupt.signal,
    ...(process.stderr.isTTY ? { stderrTerminal: { write: (raw: string) => process.stderr.write(raw), columns: () => process.stderr.columns || Number(process.env.COLUMNS) || undefined } } : {}),
  });
}
