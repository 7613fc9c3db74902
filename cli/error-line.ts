import { TsbuildError, type ErrorGroup } from '../builder/index.js';
import { noSpaceCause } from './disk-full.js';
import { printable } from './printable.js';

/** The one line the command prints for a failure: the library's own message, or what the system refused. */
export function errorLine(err: unknown): string {
  if (err instanceof TsbuildError) return printable(err.message);
  const noSpace = noSpaceCause(err);
  if (noSpace) return printable(`no space left on device${noSpace.path ? `: cannot write ${noSpace.path}` : ''}`);
  const denied = accessDenied(err);
  if (denied) return printable(denied);
  const message = err instanceof Error ? err.message : String(err);
  return `internal error: ${printable(message.split('\n')[0]!)}`;
}

/** The exit code of each group of failures (README, Exit codes); a usage error of the parser is 2 as well. */
const exitCodes: Readonly<Record<ErrorGroup, number>> = { system: 1, usage: 2, frontend: 3, context: 4, image: 5, registry: 6, run: 7, output: 8, cache: 9 };

/** The exit code for a failure: by its group; 130 (128 + SIGINT, as shells report it) for Ctrl-C; 1 for anything else. */
export function exitCodeOf(err: unknown): number {
  if (wasInterrupted(err)) return 130;
  return err instanceof TsbuildError ? exitCodes[err.group] : 1;
}

function wasInterrupted(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (e instanceof TsbuildError && e.code === 'INTERRUPTED') return true;
  return false;
}

/** What the file system refused: a path tsbuild may not read or write is the user's to fix, not a bug. */
const accessFailures: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};

function accessDenied(err: unknown): string | undefined {
  const { code, path, syscall } = err as NodeJS.ErrnoException;
  const reason = code === undefined ? undefined : accessFailures[code];
  if (reason === undefined || path === undefined) return undefined;
  return `${reason}: cannot ${syscall ?? 'access'} ${path}`;
}
