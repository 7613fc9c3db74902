/**
 * `statx` and `readlinkat` on a name in an open directory, never following it: the metadata of a
 * tree read relative to directory descriptors, as fast as Node's own lstat by path. The statx
 * layout is the same on every Linux architecture.
 */
import { constants as osConstants } from 'node:os';
import { errnoError, lastErrno, lazyFunctions } from './libc.js';

/** A node's metadata as stat(2) gives it; times in nanoseconds since the epoch. */
export interface RawStat {
  /** File type and permission bits (`st_mode`). */
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: bigint;
  ino: bigint;
  /** Device numbers encoded as glibc's makedev() does, like Node's `dev` and `rdev`. */
  dev: bigint;
  rdev: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** 0 where the file system does not record creation times. */
  birthtimeNs: bigint;
}

const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_NO_AUTOMOUNT = 0x800;
/** STATX_BASIC_STATS | STATX_BTIME. */
const STATX_MASK = 0x7ff | 0x800;
const STATX_SIZE = 256;
const { ENOENT, ENOTDIR } = osConstants.errno as Record<string, number>;

const bind = lazyFunctions({
  statx: 'int statx(int dirfd, const char *path, int flags, unsigned int mask, void *buf)',
  readlinkat: 'long readlinkat(int dirfd, const char *path, void *buf, size_t size)',
});
/** One result buffer, reused: the calls are synchronous. */
const buffer = Buffer.alloc(STATX_SIZE);
const linkBuffer = Buffer.alloc(4096);

/** The metadata of `name` in the directory `dirFd` (a symlink itself); undefined when it is gone. */
export function statAt(dirFd: number, name: string): RawStat | undefined {
  if (bind().statx(dirFd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_MASK, buffer) !== 0) {
    const code = lastErrno();
    if (code === ENOENT || code === ENOTDIR) return undefined;
    throw errnoError('statx', name, code);
  }
  return {
    mode: buffer.readUInt16LE(28),
    uid: buffer.readUInt32LE(20),
    gid: buffer.readUInt32LE(24),
    nlink: buffer.readUInt32LE(16),
    size: buffer.readBigUInt64LE(40),
    ino: buffer.readBigUInt64LE(32),
    birthtimeNs: timestamp(80),
    ctimeNs: timestamp(96),
    mtimeNs: timestamp(112),
    rdev: makedev(buffer.readUInt32LE(128), buffer.readUInt32LE(132)),
    dev: makedev(buffer.readUInt32LE(136), buffer.readUInt32LE(140)),
  };
}

/** The target of the symlink `name` in the directory `dirFd`; undefined when it is gone. */
export function readLinkAt(dirFd: number, name: string): string | undefined {
  const length = Number(bind().readlinkat(dirFd, name, linkBuffer, linkBuffer.length));
  if (length < 0) {
    const code = lastErrno();
    if (code === ENOENT || code === ENOTDIR) return undefined;
    throw errnoError('readlinkat', name, code);
  }
  return linkBuffer.subarray(0, length).toString();
}

/** A `struct statx_timestamp` (s64 seconds, u32 nanoseconds) at `offset`, in nanoseconds. */
function timestamp(offset: number): bigint {
  return buffer.readBigInt64LE(offset) * 1_000_000_000n + BigInt(buffer.readUInt32LE(offset + 8));
}

/** The last device number made: a scan meets the same few again and again, and each would be a new bigint. */
let lastDevice = { major: 0, minor: 0, dev: 0n };

/** glibc's makedev(): major and minor split around each other's low bits. */
function makedev(major: number, minor: number): bigint {
  // The rdev of everything but device nodes.
  if (major === 0 && minor === 0) return 0n;
  if (major === lastDevice.major && minor === lastDevice.minor) return lastDevice.dev;
  const dev = encodeDevice(major, minor);
  lastDevice = { major, minor, dev };
  return dev;
}

function encodeDevice(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}
