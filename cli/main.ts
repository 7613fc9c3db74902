#!/usr/bin/env node
import { TsbuildError } from '../layers/errors.js';
import { run } from './run.js';

const interrupt = new AbortController();
const stop = (): void => interrupt.abort(new TsbuildError('INTERRUPTED', 'build interrupted'));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

process.exitCode = await run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  signal: interrupt.signal,
  ...(process.stderr.isTTY ? { stderrTerminal: { write: (raw: string) => process.stderr.write(raw) } } : {}),
});
