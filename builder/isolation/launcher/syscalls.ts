/**
 * The system calls the launcher makes that Node has no API for, bound through koffi when this
 * module loads (before the root changes, so nothing is loaded from disk afterwards). Each wrapper
 * throws a Node-style error (`code` such as `EPERM`) when the call fails. Calls that change
 * credentials use the raw system call, so they change only the calling (main) thread, the one
 * that then execs.
 */
import { errnoError, lastErrno, libc } from '../../../layers/native/libc.js';
import { aarch64Syscalls } from './syscall-table-aarch64.js';
import { x86_64Syscalls } from './syscall-table-x86_64.js';

const { koffi, lib } = libc();

/** This machine's system call numbers. */
const hostSyscalls: Readonly<Record<string, number>> = process.arch === 'arm64' ? aarch64Syscalls : x86_64Syscalls;

const c = {
  mount: lib.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: lib.func('int umount2(const char *target, int flags)'),
  mknod: lib.func('int mknod(const char *path, unsigned int mode, unsigned long dev)'),
  statvfs: lib.func('int statvfs(const char *path, _Out_ uint8_t *buf)'),
  chdir: lib.func('int chdir(const char *path)'),
  fchdir: lib.func('int fchdir(int fd)'),
  sethostname: lib.func('int sethostname(const char *name, unsigned long len)'),
  prctl: lib.func('int prctl(int option, ...)'),
  capset: lib.func('int capset(void *header, void *data)'),
  socket: lib.func('int socket(int domain, int type, int protocol)'),
  ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
  poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
  dup2: lib.func('int dup2(int from, int to)'),
  close: lib.func('int close(int fd)'),
  fcntl: lib.func('int fcntl(int fd, int cmd, ...)'),
  signal: lib.func('void *signal(int signum, void *handler)'),
  sigprocmask: lib.func('int sigprocmask(int how, void *set, void *old)'),
  execve: lib.func('int execve(const char *path, const char **argv, const char **envp)'),
  syscall: lib.func('long syscall(long number, ...)'),
};

function check(result: number | bigint, name: string, path?: string): void {
  if (Number(result) === -1) throw errnoError(name, path);
}

/** A raw system call with integer (or string) arguments; returns its result. */
function rawSyscall(name: string, ...args: (number | string | null)[]): number {
  const number = hostSyscalls[name];
  if (number === undefined) throw new Error(`no system call ${name} on ${process.arch}`);
  const typed = args.flatMap((arg) => (typeof arg === 'number' ? ['unsigned long', arg] : ['const char *', arg]));
  const result = Number(c.syscall(number, ...typed));
  check(result, name, typeof args[0] === 'string' ? args[0] : undefined);
  return result;
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  check(c.mount(source, target, fstype, flags, data), 'mount', target);
}

export function umount2(target: string, flags: number): void {
  check(c.umount2(target, flags), 'umount2', target);
}

export function mknod(path: string, mode: number, major: number, minor: number): void {
  check(c.mknod(path, mode, (major << 8) | minor), 'mknod', path);
}

/** The `f_flag` mount flags (ST_*) of the file system at `path`. */
export function mountFlags(path: string): number {
  const buffer = Buffer.alloc(128);
  check(c.statvfs(path, buffer), 'statvfs', path);
  // struct statvfs on 64-bit glibc and musl: nine 8-byte fields, then f_flag
  return Number(buffer.readBigUInt64LE(72));
}

export function chdir(path: string): void {
  check(c.chdir(path), 'chdir', path);
}

export function fchdir(fd: number): void {
  check(c.fchdir(fd), 'fchdir');
}

export function pivotRoot(newRoot: string, putOld: string): void {
  rawSyscall('pivot_root', newRoot, putOld);
}

export function sethostname(name: string): void {
  check(c.sethostname(name, Buffer.byteLength(name)), 'sethostname');
}

/** prctl(2) with integer arguments. */
export function prctl(option: number, ...args: number[]): number {
  const result = c.prctl(option, ...args.flatMap((arg) => ['unsigned long', arg]));
  check(result, 'prctl');
  return result;
}

/** prctl(2) whose second argument is a pointer to `data`. */
export function prctlPointer(option: number, arg: number, data: Buffer): void {
  check(c.prctl(option, 'unsigned long', arg, 'void *', data), 'prctl');
}

/** The address of a Buffer's memory, for structures that point to other memory. */
export function addressOf(buffer: Buffer): bigint {
  return koffi.address(buffer);
}

export function capset(header: Buffer, data: Buffer): void {
  check(c.capset(header, data), 'capset');
}

export function socket(domain: number, type: number, protocol: number): number {
  const fd = c.socket(domain, type, protocol);
  check(fd, 'socket');
  return fd;
}

export function ioctl(fd: number, request: number, data: Buffer): void {
  check(c.ioctl(fd, request, 'void *', data), 'ioctl');
}

/** poll(2) over `fds` (struct pollfd entries); returns how many are ready. */
export function poll(fds: Buffer, timeoutMs: number): number {
  const ready = c.poll(fds, fds.length / 8, timeoutMs);
  check(ready, 'poll');
  return ready;
}

export function dup2(from: number, to: number): void {
  check(c.dup2(from, to), 'dup2');
}

export function close(fd: number): void {
  check(c.close(fd), 'close');
}

/**
 * Makes `fd` an ordinary inherited descriptor: not close-on-exec and blocking (Node marks its
 * stdio close-on-exec and may make it non-blocking).
 */
export function inheritable(fd: number): void {
  const F_SETFD = 2;
  const F_GETFL = 3;
  const F_SETFL = 4;
  const O_NONBLOCK = 0o4000;
  check(c.fcntl(fd, F_SETFD, 'int', 0), 'fcntl');
  const flags = c.fcntl(fd, F_GETFL);
  check(flags, 'fcntl');
  check(c.fcntl(fd, F_SETFL, 'int', flags & ~O_NONBLOCK), 'fcntl');
}

/** Resets `signum` to its default action (errors, such as for SIGKILL, ignored). */
export function defaultSignalAction(signum: number): void {
  c.signal(signum, null);
}

/** Unblocks every signal on the calling thread. */
export function unblockAllSignals(): void {
  const SIG_SETMASK = 2;
  check(c.sigprocmask(SIG_SETMASK, Buffer.alloc(128), null), 'sigprocmask');
}

export function setgroups(gids: readonly number[]): void {
  const list = Buffer.alloc(4 * Math.max(gids.length, 1));
  gids.forEach((gid, index) => list.writeUInt32LE(gid, index * 4));
  const number = hostSyscalls.setgroups as number;
  check(c.syscall(number, 'unsigned long', gids.length, 'void *', list), 'setgroups');
}

export function setresgid(gid: number): void {
  rawSyscall('setresgid', gid, gid, gid);
}

export function setresuid(uid: number): void {
  rawSyscall('setresuid', uid, uid, uid);
}

/** Marks every fd from `first` on close-on-exec. */
export function closeOnExecFrom(first: number): void {
  const CLOSE_RANGE_CLOEXEC = 4;
  rawSyscall('close_range', first, 0xffffffff, CLOSE_RANGE_CLOEXEC);
}

/** execve(2); returns only on failure, with the errno name (`ENOENT`, `EACCES`, ...). */
export function execve(path: string, argv: readonly string[], envp: readonly string[]): string {
  c.execve(path, [...argv, null], [...envp, null]);
  return errnoError('execve', path, lastErrno()).code ?? 'EIO';
}
