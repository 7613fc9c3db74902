/**
 * The C library, for the system calls Node has no API for (extended attributes, fd-relative path
 * resolution, process credentials). Loaded on first use through koffi, whose prebuilt binaries come
 * with its npm package. Every call is synchronous and made on the calling thread.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import type * as Koffi from 'koffi';

const require = createRequire(import.meta.url);

/** glibc's name first, then musl's (Alpine-based Node images). */
const libraryNames = ['libc.so.6', `libc.musl-${process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch}.so.1`];

let loaded: { koffi: typeof Koffi; lib: Koffi.LibraryHandle } | undefined;

/** koffi and the loaded C library; throws a plain Error when neither library name loads. */
export function libc(): { koffi: typeof Koffi; lib: Koffi.LibraryHandle } {
  if (loaded) return loaded;
  const koffi = require('koffi') as typeof Koffi;
  let lastError: unknown;
  for (const name of libraryNames) {
    try {
      loaded = { koffi, lib: koffi.load(name) };
      return loaded;
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`cannot load the C library (${libraryNames.join(', ')}): ${(lastError as Error).message}`);
}

/** A bound C function, as koffi returns it. */
export type CFunction = (...args: unknown[]) => number | bigint;

/**
 * The C functions `signatures` declares, by name, bound on the first call of the returned getter
 * and kept: a module binds only what it calls, and only once it calls it.
 */
export function lazyFunctions<Name extends string>(signatures: Readonly<Record<Name, string>>): () => Readonly<Record<Name, CFunction>> {
  let bound: Record<Name, CFunction> | undefined;
  return () => {
    if (bound) return bound;
    const { lib } = libc();
    bound = Object.fromEntries(Object.entries<string>(signatures).map(([name, signature]) => [name, lib.func(signature) as CFunction])) as Record<Name, CFunction>;
    return bound;
  };
}

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** The errno of the last failed call on this thread. */
export function lastErrno(): number {
  return libc().koffi.errno();
}

/**
 * A Node-style system error (`code` such as `ENOENT`, `errno`, `syscall`, `path`) for the errno of
 * the call that just failed, so callers can test it with `isErrnoCode` as they do for `fs` errors.
 */
export function errnoError(syscall: string, path?: string, errno: number = lastErrno()): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? `E${errno}`;
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall}${path === undefined ? '' : ` '${path}'`} failed`);
  error.code = code;
  error.errno = -errno;
  error.syscall = syscall;
  if (path !== undefined) error.path = path;
  return error;
}
