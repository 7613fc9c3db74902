import { closeSync, fsync, openSync, statSync, unlinkSync, writeFileSync, type Stats, type WriteStream } from 'node:fs';
import { lstat, open, readdir, unlink } from 'node:fs/promises';
import { promisify } from 'node:util';

// Opening, writing a small file, closing, renaming and unlinking take microseconds: done at once,
// they spare a thread-pool round trip each (0.1-0.4 ms on a busy machine). What waits on the disk,
// an fsync, stays off the thread.
const fsyncAsync = promisify(fsync);

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

/** Removes a small file, or nothing when it does not exist: at once, for lock and temp files of a few bytes. */
export function removeSmallFileIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (!isErrnoCode(error, 'ENOENT')) throw error;
  }
}

/** Whether `path` is a regular file (or, with `directory`, a directory); false when it or a parent is missing. */
export function fileExistsSync(path: string, directory = false): boolean {
  let info: Stats | undefined;
  try {
    info = statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if (isErrnoCode(error, 'ENOTDIR')) return false;
    throw error;
  }
  return info !== undefined && (directory ? info.isDirectory() : info.isFile());
}

/** Flushes a written file to disk before it is renamed into place. */
export async function syncFile(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
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

/** Creates `path` (it must not exist) with `content`, a small document, synced to disk before it returns. */
export async function writeSynced(path: string, content: string): Promise<void> {
  const fd = openSync(path, 'wx');
  try {
    writeFileSync(fd, content, 'utf8');
    await fsyncAsync(fd);
  } finally {
    closeSync(fd);
  }
}
