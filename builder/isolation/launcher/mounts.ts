/**
 * The step's file system view: proc, a minimal dev, sys and the binds mounted inside the rootfs
 * (all in the launcher's private mount namespace), then the rootfs made the root with pivot_root
 * and the host's root detached, so no path and no /proc/N/root link leads back to the host.
 */
import { chmodSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LauncherConfig, ResolvedBind } from './config.js';
import { chdir, fchdir, mknod, mount, mountFlags, pivotRoot, umount2 } from './syscalls.js';

const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_NOEXEC = 0x8;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SLAVE = 0x80000;
const MNT_DETACH = 0x2;
const S_IFCHR = 0o020000;

/** statvfs ST_* flags that map to MS_* flags of the same value, and ST_RELATIME. */
const ST_KEPT = 0x2 | 0x4 | 0x8 | 0x10 | 0x40 | 0x400 | 0x800;
const ST_RELATIME = 0x1000;
const MS_RELATIME = 0x200000;

/** The character devices of /dev: name, major, minor. */
const devices: readonly [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

/** proc and sys files that show or change host-wide state, hidden as container runtimes hide them. */
const maskedPaths: readonly string[] = [
  'proc/acpi', 'proc/asound', 'proc/kcore', 'proc/keys', 'proc/latency_stats', 'proc/timer_list', 'proc/timer_stats',
  'proc/sched_debug', 'proc/scsi', 'sys/firmware', 'sys/devices/virtual/powercap',
];
/** proc entries that change host-wide settings (sysctls, magic SysRq, interrupts), made read-only. */
const readonlyPaths: readonly string[] = ['proc/bus', 'proc/fs', 'proc/irq', 'proc/sys', 'proc/sysrq-trigger'];

const isErrno = (error: unknown, code: string): boolean => (error as NodeJS.ErrnoException).code === code;

/**
 * Makes the bind mount at `target` read-only. A remount must repeat the flags the mount already
 * has (a user namespace may not clear nosuid, nodev, noexec or atime flags it inherited).
 */
function remountReadonly(target: string): void {
  const flags = mountFlags(target);
  const kept = (flags & ST_KEPT) | (flags & ST_RELATIME ? MS_RELATIME : 0);
  mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY | kept);
}

function bind(source: string, target: string, readonly: boolean): void {
  mount(source, target, null, MS_BIND | MS_REC);
  if (readonly) remountReadonly(target);
}

/**
 * Creates the device nodes; in a user namespace, where mknod is refused, binds the host's nodes
 * over empty files instead.
 */
function makeDevices(dev: string): void {
  for (const [name, major, minor] of devices) {
    const path = join(dev, name);
    try {
      mknod(path, S_IFCHR | 0o666, major, minor);
      chmodSync(path, 0o666);
    } catch (error) {
      if (!isErrno(error, 'EPERM')) throw error;
      writeFileSync(path, '');
      bind(`/dev/${name}`, path, false);
    }
  }
}

/** A fresh read-only sysfs; where the user namespace may not mount one, the host's /sys bound read-only. */
function mountSys(sys: string): void {
  try {
    mount('sysfs', sys, 'sysfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
  } catch (error) {
    if (!isErrno(error, 'EPERM')) throw error;
    bind('/sys', sys, true);
  }
}

function mountDev(dev: string, ptsGid: number | undefined): void {
  mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_NOEXEC, 'mode=0755,size=65536k');
  makeDevices(dev);
  mkdirSync(join(dev, 'pts'), { mode: 0o755 });
  mount('devpts', join(dev, 'pts'), 'devpts', MS_NOSUID | MS_NOEXEC, `newinstance,ptmxmode=0666,mode=0620${ptsGid === undefined ? '' : `,gid=${ptsGid}`}`);
  symlinkSync('pts/ptmx', join(dev, 'ptmx'));
  mkdirSync(join(dev, 'shm'));
  chmodSync(join(dev, 'shm'), 0o1777);
  mount('shm', join(dev, 'shm'), 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k');
  symlinkSync('/proc/self/fd', join(dev, 'fd'));
  ['stdin', 'stdout', 'stderr'].forEach((name, fd) => symlinkSync(`/proc/self/fd/${fd}`, join(dev, name)));
}

/**
 * Hides each masked path that exists (an empty read-only tmpfs over a directory, /dev/null over a
 * file) and makes each read-only path a read-only bind of itself.
 */
function protectKernelFiles(config: LauncherConfig): void {
  const under = (path: string): string => join(path.startsWith('proc/') ? config.proc : config.sys, path.slice(path.indexOf('/') + 1));
  for (const path of maskedPaths) {
    const target = under(path);
    let directory: boolean;
    try {
      directory = statSync(target).isDirectory();
    } catch {
      continue;
    }
    if (directory) mount('tmpfs', target, 'tmpfs', MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'size=0');
    else mount('/dev/null', target, null, MS_BIND);
  }
  for (const path of readonlyPaths) {
    const target = under(path);
    if (existsSync(target)) bind(target, target, true);
  }
}

/**
 * Mounts everything the step sees inside the rootfs. The rootfs is first bound onto itself, so it
 * is a mount point pivot_root accepts and the mounts below land on that bind. The new proc shows
 * this pid namespace; it is mounted while the host's /proc is still visible, which a user
 * namespace requires.
 */
export function mountStepFilesystems(config: LauncherConfig): void {
  mount(config.rootfs, config.rootfs, null, MS_BIND | MS_REC);
  mount('proc', config.proc, 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC);
  mountDev(config.dev, config.ptsGid);
  mountSys(config.sys);
  protectKernelFiles(config);
  for (const entry of config.binds) bindEntry(entry);
}

function bindEntry(entry: ResolvedBind): void {
  try {
    bind(entry.source, entry.target, entry.readonly);
  } catch (error) {
    throw new Error(`cannot bind ${entry.source}: ${(error as Error).message}`);
  }
}

/**
 * Makes `rootfs` the root: pivot_root stacks the old root on the new one, which is then detached
 * (as a slave, so the unmount does not propagate to the host). Afterwards the working directory is
 * the new `/`.
 */
export function enterRoot(rootfs: string): void {
  const oldRoot = openSync('/', fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    chdir(rootfs);
    pivotRoot('.', '.');
    fchdir(oldRoot);
    mount(null, '.', null, MS_SLAVE | MS_REC);
    umount2('.', MNT_DETACH);
  } finally {
    closeSync(oldRoot);
  }
  chdir('/');
}
