#!/usr/bin/env node
import { readFileSync } from 'node:fs';

// Answered before the CLI and the library load, so it costs no more than starting node.
if ((process.argv[2] === '--version' || process.argv[2] === '-V') && process.argv.length === 3) {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  process.stdout.write(`tsbuild ${manifest.version}\n`);
} else {
  const [{ run }, { processIo }] = await Promise.all([import('./run.js'), import('./io.js')]);
  const interrupt = new AbortController();
  // A signal that stops a build comes after the library loaded, so this import is then immediate.
  const stop = (): void => {
    void import('../builder/index.js').then(({ TsbuildError }) => interrupt.abort(new TsbuildError('INTERRUPTED', 'build interrupted')));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  process.exitCode = await run(process.argv.slice(2), {
    ...processIo,
    signal: interrupt.signal,
    entryScript: process.argv[1]!,
    ...(process.stderr.isTTY ? { stderrTerminal: { write: (raw: string) => process.stderr.write(raw), columns: () => process.stderr.columns || Number(process.env.COLUMNS) || undefined } } : {}),
  });
}
