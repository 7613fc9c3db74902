import { statfs } from 'node:fs/promises';
import path from 'node:path';
import { SourceError, TsbuildError } from '../builder/index.js';

/** A directory a build writes to, and what it is for in a message. */
export interface WrittenDirectory {
  readonly dir: string;
  readonly role: string;
}

/** The out-of-space error (ENOSPC, or EDQUOT for a quota) somewhere in `err`'s causes, if any. */
export function noSpaceCause(err: unknown): NodeJS.ErrnoException | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return e as NodeJS.ErrnoException;
  }
  return undefined;
}

/**
 * Turns a failure for lack of space into one that says which directory is full: of those the
 * build writes to, the one whose file system has the least room left. A write error seldom
 * carries the path it was writing, so the file systems themselves are asked.
 */
export async function explainNoSpace(err: unknown, written: readonly WrittenDirectory[]): Promise<unknown> {
  const cause = noSpaceCause(err);
  if (cause === undefined) return err;
  let fullest: { place: WrittenDirectory; free: number } | undefined;
  for (const place of written) {
    const free = await freeBytes(place.dir);
    if (free !== undefined && (fullest === undefined || free < fullest.free)) fullest = { place, free };
  }
  const where = fullest ? `${fullest.place.dir} (${fullest.place.role}) is full` : cause.path ? `cannot write ${cause.path}` : 'a disk is full';
  const message = `no space left on device: ${where}`;
  return err instanceof SourceError ? new SourceError(err.file, err.line, message, { cause: err }) : new TsbuildError('NO_SPACE', message, { cause: err });
}

/** Bytes an unprivileged writer may still use on the file system holding `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number | undefined> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      const stats = await statfs(current);
      return stats.bavail * stats.bsize;
    } catch {
      if (current === path.dirname(current)) return undefined;
    }
  }
}
