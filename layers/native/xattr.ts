/**
 * The extended-attribute system calls, on a path and never through its final symlink
 * (`llistxattr`, `lgetxattr`, `lsetxattr`). Synchronous, one call per attribute: cheap enough for
 * the snapshot path, and nothing to install in the image being built.
 */
import { errnoError, lastErrno, lazyFunctions } from './libc.js';
import { constants as osConstants } from 'node:os';

const { ERANGE, ENODATA, ENOTSUP, EOPNOTSUPP, ENOENT, ENOTDIR } = osConstants.errno as Record<string, number>;

/** Reads retried when the attribute grew between the size query and the read. */
const MAX_SIZE_RETRIES = 8;

const bind = lazyFunctions({
  llistxattr: 'long llistxattr(const char *path, void *list, size_t size)',
  lgetxattr: 'long lgetxattr(const char *path, const char *name, void *value, size_t size)',
  lsetxattr: 'int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)',
});

/** Errors that mean "no such path" rather than a failure. */
function vanished(errno: number): boolean {
  return errno === ENOENT || errno === ENOTDIR;
}

/** Errors that mean "this file system keeps no attributes here". */
function unsupported(errno: number): boolean {
  return errno === ENOTSUP || errno === EOPNOTSUPP;
}

/**
 * Calls `fill(buffer, size)` (size 0 asks for the size) until the result fits: the value can grow
 * between the query and the read, which the kernel reports as ERANGE. Returns the bytes, or the
 * errno of a failure other than ERANGE.
 */
function readSized(fill: (buffer: Buffer | null, size: number) => number): Buffer | number {
  for (let attempt = 0; attempt < MAX_SIZE_RETRIES; attempt++) {
    const size = fill(null, 0);
    if (size < 0) return lastErrno();
    if (size === 0) return Buffer.alloc(0);
    const buffer = Buffer.alloc(size);
    const got = fill(buffer, size);
    if (got >= 0) return buffer.subarray(0, got);
    const errno = lastErrno();
    if (errno !== ERANGE) return errno;
  }
  return ERANGE;
}

/**
 * The attribute names of `path` (the symlink itself when it is one), every namespace the process
 * may list; [] when its file system keeps none, undefined when the path is gone.
 */
export function listXattrNames(path: string): string[] | undefined {
  const { llistxattr } = bind();
  const list = readSized((buffer, size) => Number(llistxattr(path, buffer, size)));
  if (typeof list === 'number') {
    if (vanished(list)) return undefined;
    if (unsupported(list)) return [];
    throw errnoError('llistxattr', path, list);
  }
  const names: string[] = [];
  for (let start = 0; start < list.length; ) {
    const end = list.indexOf(0, start);
    const stop = end === -1 ? list.length : end;
    if (stop > start) names.push(list.subarray(start, stop).toString('utf8'));
    start = stop + 1;
  }
  return names;
}

/** The value of attribute `name` of `path` (not followed), exact bytes; undefined when it or the path is gone. */
export function getXattr(path: string, name: string): Buffer | undefined {
  const { lgetxattr } = bind();
  const value = readSized((buffer, size) => Number(lgetxattr(path, name, buffer, size)));
  if (typeof value !== 'number') return value;
  if (value === ENODATA || vanished(value) || unsupported(value)) return undefined;
  throw errnoError('lgetxattr', `${path}: ${name}`, value);
}

/** Sets attribute `name` of `path` (not followed), creating or replacing it; throws a Node-style error. */
export function setXattr(path: string, name: string, value: Buffer): void {
  const { lsetxattr } = bind();
  if (lsetxattr(path, name, value, value.length, 0) !== 0) throw errnoError('lsetxattr', `${path}: ${name}`);
}
