import { statSync } from 'node:fs';
import { TsbuildError } from '../../layers/errors.js';

/**
 * Why the Dockerfile could not be read, as one line with the fix: a missing context directory, a
 * missing file (with `-f` as the way out), a directory where the file should be, or the OS's reason.
 */
export function dockerfileReadError(dockerfile: string, context: string, named: boolean, err: unknown): TsbuildError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' && !isDirectory(context)) {
    return new TsbuildError('SOURCE_NOT_FOUND', `build context ${context} does not exist: give the directory that holds your sources as the last argument`);
  }
  if (code === 'ENOENT') {
    const fix = named ? 'check the path given to -f/--file' : `add a Dockerfile to ${context} or name one with -f/--file PATH`;
    return new TsbuildError('NO_DOCKERFILE', `no Dockerfile at ${dockerfile}: ${fix}`);
  }
  if (code === 'EISDIR') return new TsbuildError('NO_DOCKERFILE', `${dockerfile} is a directory, not a Dockerfile: name the file itself with -f/--file`);
  return new TsbuildError('NO_DOCKERFILE', `cannot read Dockerfile ${dockerfile}: ${code ?? (err as Error).message}`);
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
