import { accessSync, constants as fsConstants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The system directories host tools are taken from when PATH must not be trusted. */
export const systemBinDirs: readonly string[] = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** The directories of `$PATH`, in order. */
export function pathDirs(): string[] {
  return (process.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
}

/** The first executable file called `name` in `dirs`; looked up at once, a few microseconds a directory. */
export function findExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** A host tool from the system directories only, never from `$PATH`. */
export function findHostTool(name: string): string | undefined {
  return findExecutable(name, systemBinDirs);
}
