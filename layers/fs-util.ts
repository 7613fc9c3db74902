import type { Stats, WriteStream } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';

/** True when `error` is a Node system error with this `code` (e.g. `ENOENT`). */
export function isErrnoCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

/** The names in a directory; none when it does not exist. */
export async function readdirIfExists(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
}

export async function removeIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isErrnoCode(error, 'ENOENT')) throw error;
  }
}

/** Flushes a written file to disk before it is renamed into place. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The path's own metadata, or undefined when it (or a parent) does not exist. */
export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return undefined;
    throw error;
  }
}

/**
 * A write stream on a file that already exists when this resolves. `createWriteStream` opens its
 * file lazily, so a caller cleaning up after an early failure could delete the path before the
 * open creates it; opening first closes that window.
 */
export async function openWriteStream(path: string, options: { flags?: string; mode?: number } = {}): Promise<WriteStream> {
  const handle = await open(path, options.flags ?? 'w', options.mode);
  return handle.createWriteStream();
}

/** Creates `path` (it must not exist) with `content`, synced to disk before it returns. */
export async function writeSynced(path: string, content: string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}
