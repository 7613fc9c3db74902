/**
 * Paths resolved inside a root directory through file descriptors, for touching a tree that
 * untrusted code has had its hands on (a rootfs after a RUN step): no symlink or `..` can lead
 * out of the root, and the final component is never followed. The kernel does the resolution with
 * `openat2(RESOLVE_IN_ROOT)`; where it lacks that call (before Linux 5.6), the same walk is done
 * here one component at a time with `openat(O_NOFOLLOW)`.
 *
 * Two ways to meet a symlink on the way: `clamp` follows it as a process chrooted at the root would
 * (absolute targets and `..` stay inside), `refuse` fails with ELOOP, for paths that were made
 * without symlinks and must still be the same paths.
 *
 * Directory listings go through `/proc/self/fd/N`, the kernel's name for an open descriptor.
 */
import { closeSync, constants, existsSync, fstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { TsbuildError } from '../errors.js';
import { errnoError, lastErrno, lazyFunctions } from './libc.js';

export type SymlinkPolicy = 'clamp' | 'refuse';
/** How to resolve: the kernel's openat2, the component walk, or openat2 with the walk where it is missing. */
export type Strategy = 'auto' | 'openat2' | 'walk';

const errno = osConstants.errno as Record<string, number>;
/** Open a path only to name it (resolve, stat, use as a directory for *at calls). */
export const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;
const AT_REMOVEDIR = 0x200;
const AT_SYMLINK_NOFOLLOW = 0x100;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_IN_ROOT = 0x10;
/** openat2's number on x86_64 and aarch64 alike (the table is shared since Linux 5.1). */
const SYS_openat2 = 437;
/** The kernel's own limit on symlinks followed in one lookup. */
const MAX_SYMLINKS = 40;

const bind = lazyFunctions({
  syscall: 'long syscall(long number, ...)',
  openat: 'int openat(int dirfd, const char *path, int flags, ...)',
  readlinkat: 'long readlinkat(int dirfd, const char *path, void *buf, size_t size)',
  unlinkat: 'int unlinkat(int dirfd, const char *path, int flags)',
  mkdirat: 'int mkdirat(int dirfd, const char *path, uint32_t mode)',
  utimensat: 'int utimensat(int dirfd, const char *path, const void *times, int flags)',
});
/** False once the kernel said ENOSYS: every later call walks. */
let openat2Works = true;

let procChecked = false;

/**
 * The path that names the open descriptor `fd` (`/proc/self/fd/N`), for the calls that take only
 * paths: listing a directory, reading attributes by a name relative to a directory. Throws when
 * /proc is not mounted, where the path would simply not exist and look like a vanished file.
 */
export function fdPath(fd: number): string {
  if (!procChecked) {
    if (!existsSync('/proc/self/fd')) throw new TsbuildError('NO_PROC', '/proc is not mounted: tsbuild needs it to read directories through descriptors');
    procChecked = true;
  }
  return `/proc/self/fd/${fd}`;
}

function fail(syscall: string, path: string, code?: number): never {
  throw errnoError(syscall, path, code);
}

function components(rel: string): string[] {
  return rel.split('/').filter((part) => part !== '' && part !== '.');
}

export interface OpenOptions {
  /** What a symlink on the way does (default `clamp`). */
  symlinks?: SymlinkPolicy;
  /** Follow a symlink in the final component too (within the root); never, by default. */
  followFinal?: boolean;
  /** Permissions of a file O_CREAT makes. */
  mode?: number;
}

/** A directory opened once, that paths are resolved inside of. Close it when done. */
export class RootDir {
  private constructor(
    /** The root's path, for messages. */
    readonly path: string,
    readonly fd: number,
    private readonly strategy: Strategy,
  ) {}

  /** Opens the directory `root` (its own path is trusted: it is followed as given). */
  static open(root: string, strategy: Strategy = 'auto'): RootDir {
    const fd = Number(bind().openat(-100, root, O_PATH | constants.O_DIRECTORY | O_CLOEXEC));
    if (fd < 0) fail('open', root);
    return new RootDir(root, fd, strategy);
  }

  /** Runs `action` with `root` opened, closing it afterwards. */
  static with<T>(root: string, action: (dir: RootDir) => T): T {
    const dir = RootDir.open(root);
    try {
      return action(dir);
    } finally {
      dir.close();
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  /**
   * A descriptor for `rel` (root-relative; '' is the root) opened with `flags`, resolved inside the
   * root; the final component is not followed unless `followFinal`. Throws a Node-style error
   * (ENOENT, ENOTDIR, ELOOP for a symlink `refuse` met or one too many, ...).
   */
  openFile(rel: string, flags: number, options: OpenOptions = {}): number {
    const symlinks = options.symlinks ?? 'clamp';
    const finalFlags = flags | O_CLOEXEC | (options.followFinal ? 0 : constants.O_NOFOLLOW);
    if (this.strategy === 'openat2' || (this.strategy === 'auto' && openat2Works)) {
      const fd = openat2(this.fd, rel, finalFlags, options.mode ?? 0, symlinks);
      if (fd >= 0) return fd;
      const code = lastErrno();
      if (code === errno.ENOSYS && this.strategy === 'auto') openat2Works = false;
      // A container's seccomp filter may refuse a call it does not know with EPERM.
      else if (!(code === errno.EPERM && this.strategy === 'auto')) fail('openat2', this.describe(rel), code);
    }
    return walk(this.fd, rel, finalFlags, options, this.describe(rel));
  }

  /** The metadata of `rel` itself; undefined when it does not exist (or a `refuse`d symlink is in the way). */
  lstat(rel: string, symlinks: SymlinkPolicy = 'clamp'): BigIntStats | undefined {
    const fd = this.tryOpen(rel, O_PATH, { symlinks });
    if (fd === undefined) return undefined;
    try {
      return fstatSync(fd, { bigint: true });
    } finally {
      closeSync(fd);
    }
  }

  /** The names in directory `rel`; undefined when it is not there or not a directory. */
  readdir(rel: string, symlinks: SymlinkPolicy = 'clamp'): string[] | undefined {
    const fd = this.tryOpen(rel, constants.O_RDONLY | constants.O_DIRECTORY, { symlinks });
    if (fd === undefined) return undefined;
    try {
      return readdirSync(fdPath(fd));
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Removes the non-directory `rel`, or the empty directory when `directory`: the entry itself in
   * its parent, whatever it is. Returns false when it is not there; other failures (ENOTEMPTY,
   * EISDIR, ...) throw.
   */
  remove(rel: string, directory: boolean, symlinks: SymlinkPolicy = 'clamp'): boolean {
    return this.inParent(rel, symlinks, (parent, name) => {
      if (Number(bind().unlinkat(parent, name, directory ? AT_REMOVEDIR : 0)) === 0) return true;
      if (lastErrno() === errno.ENOENT) return false;
      return fail(directory ? 'rmdir' : 'unlink', this.describe(rel));
    }) ?? false;
  }

  /** Makes the directory `rel` (its parent must exist); false when something is already there. */
  mkdir(rel: string, mode: number, symlinks: SymlinkPolicy = 'clamp'): boolean {
    const made = this.inParent(rel, symlinks, (parent, name) => {
      if (Number(bind().mkdirat(parent, name, mode)) === 0) return true;
      if (lastErrno() === errno.EEXIST) return false;
      return fail('mkdir', this.describe(rel));
    });
    return made ?? fail('mkdir', this.describe(rel), errno.ENOENT);
  }

  /** Removes `rel` and everything under it, never following a symlink; false when it is not there. */
  removeTree(rel: string, symlinks: SymlinkPolicy = 'clamp'): boolean {
    return this.inParent(rel, symlinks, (parent, name) => removeAt(parent, name, this.describe(rel))) ?? false;
  }

  /** Sets the access and modification times of `rel` itself (nanoseconds since the epoch); false when it is not there. */
  setTimes(rel: string, atimeNs: bigint, mtimeNs: bigint, symlinks: SymlinkPolicy = 'clamp'): boolean {
    const times = Buffer.alloc(32);
    times.writeBigInt64LE(atimeNs / 1_000_000_000n, 0);
    times.writeBigInt64LE(atimeNs % 1_000_000_000n, 8);
    times.writeBigInt64LE(mtimeNs / 1_000_000_000n, 16);
    times.writeBigInt64LE(mtimeNs % 1_000_000_000n, 24);
    if (rel === '') {
      return Number(bind().utimensat(this.fd, '.', times, 0)) === 0 || fail('utimensat', this.path);
    }
    return this.inParent(rel, symlinks, (parent, name) => {
      if (Number(bind().utimensat(parent, name, times, AT_SYMLINK_NOFOLLOW)) === 0) return true;
      if (lastErrno() === errno.ENOENT) return false;
      return fail('utimensat', this.describe(rel));
    }) ?? false;
  }

  /** `openFile`, with undefined for a path that is not there (ENOENT, ENOTDIR, or ELOOP from a refused symlink). */
  tryOpen(rel: string, flags: number, options: OpenOptions = {}): number | undefined {
    try {
      return this.openFile(rel, flags, options);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || (code === 'ELOOP' && options.symlinks === 'refuse')) return undefined;
      throw error;
    }
  }

  /** Runs `action` on the parent directory of `rel` (opened in the root) and its final name; undefined when the parent is not there. */
  private inParent<T>(rel: string, symlinks: SymlinkPolicy, action: (parentFd: number, name: string) => T): T | undefined {
    const parts = components(rel);
    const name = parts.pop();
    if (name === undefined || name === '..') fail('resolve', this.describe(rel), errno.EINVAL);
    const parent = this.tryOpen(parts.join('/'), O_PATH | constants.O_DIRECTORY, { symlinks, followFinal: symlinks === 'clamp' });
    if (parent === undefined) return undefined;
    try {
      return action(parent, name!);
    } finally {
      closeSync(parent);
    }
  }

  private describe(rel: string): string {
    return `${this.path}/${rel}`;
  }
}

function openat2(rootFd: number, rel: string, flags: number, mode: number, symlinks: SymlinkPolicy): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags >>> 0), 0);
  how.writeBigUInt64LE(BigInt(flags & constants.O_CREAT ? mode : 0), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (symlinks === 'refuse' ? RESOLVE_NO_SYMLINKS : 0)), 16);
  return Number(bind().syscall(SYS_openat2, 'int', rootFd, 'const char *', rel === '' ? '.' : rel, 'void *', how, 'size_t', how.length));
}

/**
 * openat2(RESOLVE_IN_ROOT) done by hand: every component opened with O_PATH|O_NOFOLLOW relative to
 * the one before, symlinks read and their targets resolved from the root (absolute) or the current
 * directory (relative), `..` never climbing above the root.
 */
function walk(rootFd: number, rel: string, flags: number, options: OpenOptions, described: string): number {
  const { openat } = bind();
  const open = (dirFd: number, name: string, openFlags: number): number => {
    const fd = Number(openFlags & constants.O_CREAT ? openat(dirFd, name, openFlags, 'uint32_t', options.mode ?? 0) : openat(dirFd, name, openFlags));
    return fd >= 0 ? fd : fail('openat', described);
  };
  const stack: number[] = [];
  const current = (): number => stack[stack.length - 1] ?? rootFd;
  let queue = components(rel);
  // As in the kernel, a trailing `/` or `/.` makes the final component a directory to enter.
  const followFinal = options.followFinal === true || /\/\.?$/.test(rel);
  let hops = 0;
  try {
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (name === '..') {
        if (stack.length > 0) closeSync(stack.pop()!);
        continue;
      }
      const last = queue.length === 0;
      if (last && !followFinal) return open(current(), name, flags);
      // O_CREAT of a missing final name: nothing to follow.
      const fd = Number(openat(current(), name, O_PATH | constants.O_NOFOLLOW | O_CLOEXEC));
      if (fd < 0) {
        if (last && lastErrno() === errno.ENOENT && flags & constants.O_CREAT) return open(current(), name, flags | constants.O_NOFOLLOW);
        fail('openat', described);
      }
      const stats = fstatSync(fd);
      if (stats.isSymbolicLink()) {
        const target = readLink(fd, described);
        closeSync(fd);
        if (options.symlinks === 'refuse' || ++hops > MAX_SYMLINKS) fail('openat', described, errno.ELOOP);
        if (target.startsWith('/')) while (stack.length > 0) closeSync(stack.pop()!);
        queue = [...components(target), ...queue];
        continue;
      }
      if (!stats.isDirectory()) {
        closeSync(fd);
        if (!last) fail('openat', described, errno.ENOTDIR);
        return open(current(), name, flags | constants.O_NOFOLLOW);
      }
      stack.push(fd);
    }
    return open(current(), '.', flags);
  } finally {
    for (const fd of stack) closeSync(fd);
  }
}

function readLink(fd: number, described: string): string {
  const buffer = Buffer.alloc(4096);
  const length = Number(bind().readlinkat(fd, '', buffer, buffer.length));
  if (length < 0) fail('readlinkat', described);
  return buffer.subarray(0, length).toString();
}

/** Removes `name` in the directory `dirFd` and, for a directory, everything under it first. */
function removeAt(dirFd: number, name: string, described: string): boolean {
  const { openat, unlinkat } = bind();
  if (Number(unlinkat(dirFd, name, 0)) === 0) return true;
  const code = lastErrno();
  if (code === errno.ENOENT) return false;
  if (code !== errno.EISDIR) fail('unlink', described, code);
  const child = Number(openat(dirFd, name, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | O_CLOEXEC));
  if (child < 0) fail('openat', described);
  try {
    for (const entry of readdirSync(fdPath(child))) removeAt(child, entry, described);
  } finally {
    closeSync(child);
  }
  if (Number(unlinkat(dirFd, name, AT_REMOVEDIR)) === 0) return true;
  return lastErrno() === errno.ENOENT ? false : fail('rmdir', described);
}
