import { closeSync, constants, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';

/**
 * Files up to this size are read whole with synchronous calls. A COPY of many small files is
 * bound by system calls, and a stream costs several thread-pool round trips per file where a
 * synchronous open, fstat, read and close take microseconds; larger files keep a stream.
 */
export const SMALL_FILE_BYTES = 256 * 1024;

/**
 * Opens a fresh stream of the regular file `abs`, expected to hold `size` bytes, as a layer
 * entry's `open` does. A small file is read when the stream is first read, at most one byte
 * more than `size` (so that a consumer sees it grew), without following a symlink that replaced
 * it, and fails the stream if it is no longer a regular file.
 */
export function fileContents(abs: string, size: number): Readable {
  if (size > SMALL_FILE_BYTES) return createReadStream(abs);
  return new Readable({
    read() {
      try {
        const data = readSmallFile(abs, size + 1);
        if (data.length > 0) this.push(data);
        this.push(null);
      } catch (err) {
        this.destroy(err as Error);
      }
    },
  });
}

/** Up to `limit` bytes of the regular file `abs`, read with synchronous calls. */
function readSmallFile(abs: string, limit: number): Buffer {
  const fd = openRegularFile(abs);
  try {
    const buffer = Buffer.allocUnsafe(limit);
    let length = 0;
    while (length < limit) {
      const read = readSync(fd, buffer, length, limit - length, null);
      if (read === 0) break;
      length += read;
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Opens the regular file `abs` for reading, as a layer entry's `openFile` does: without following
 * a symlink that replaced it, and failing if it is no longer a regular file. The caller closes it.
 */
export function openRegularFile(abs: string): number {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(fd).isFile()) throw Object.assign(new Error(`${abs} is no longer a regular file`), { code: 'EINVAL' });
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
