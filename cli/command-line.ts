import { run } from './run.js';
import { processIo } from './io.js';

/**
 * Runs this process's command line and sets its exit code. `entryScript` is the script the
 * process started from, which a build re-executes inside a user namespace.
 */
export async function runCommandLine(entryScript: string): Promise<void> {
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
    entryScript,
    ...(process.stderr.isTTY ? { stderrTerminal: { write: (raw: string) => process.stderr.write(raw), columns: () => process.stderr.columns || Number(process.env.COLUMNS) || undefined } } : {}),
  });
}
