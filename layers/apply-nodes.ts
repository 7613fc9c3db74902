import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, lstatSync, unlinkSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Meta } from './apply-entry-meta.js';
import { TsbuildError } from './errors.js';
import { isErrnoCode } from './fs-util.js';
import { errnoError, lazyFunctions } from './native/libc.js';
import { listXattrNames } from './native/xattr.js';

// Node has no mkfifo or mknod: they are called in the C library, so no tool of the tree being
// written (an in-place build's root) is ever run. Node has no metadata-preserving copy either, so
// coreutils' cp does that.
const run = promisify(execFile);

/** S_IFIFO, S_IFCHR and S_IFBLK of `st_mode`. */
const fileTypeBits = { fifo: 0o010000, char: 0o020000, block: 0o060000 } as const;

const native = lazyFunctions({ mknod: 'int mknod(const char *path, uint32_t mode, uint64_t dev)' });

/** Linux's encoding of a device number, as glibc's makedev() makes it (see device-number.ts). */
function deviceNumber(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

/** mknod(2) with mode 0600 of `kind`; throws a Node-style error. Never follows a symlink at `target`. */
function mknod(target: string, kind: keyof typeof fileTypeBits, dev: bigint): void {
  if (native().mknod(target, fileTypeBits[kind] | 0o600, dev) !== 0) throw errnoError('mknod', target);
}

/** Creates a FIFO at `target` (mode 0600; the caller sets the final mode). Fails if `target` exists. */
export async function makeFifo(target: string): Promise<void> {
  try {
    mknod(target, 'fifo', 0n);
  } catch (error) {
    throw new TsbuildError('SPECIAL_FILE', `cannot create FIFO ${target}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
}

/**
 * Creates a character or block device node at `target` (mode 0600). Returns false, creating
 * nothing, when this process may not make device nodes (EPERM: no CAP_MKNOD, or a user namespace,
 * where the kernel never allows them). Fails if `target` exists.
 */
export async function makeDevice(
  target: string,
  kind: 'char' | 'block',
  major: number,
  minor: number,
): Promise<boolean> {
  try {
    mknod(target, kind, deviceNumber(major, minor));
    return true;
  } catch (error) {
    if (isErrnoCode(error, 'EPERM')) return false;
    throw new TsbuildError('SPECIAL_FILE', `cannot create device ${target}: ${(error as NodeJS.ErrnoException).code}`, { cause: error });
  }
}

/** Replaces `target` with a copy of itself (contents, owner, mode, times, xattrs) on an inode no other path shares. */
export async function giveOwnInode(target: string): Promise<void> {
  const copy = path.join(path.dirname(target), `.tsbuild-own-${randomBytes(6).toString('hex')}`);
  await runTool('cp', ['-a', '--', target, copy], target);
  await rename(copy, target);
}

async function runTool(tool: string, args: string[], target: string): Promise<void> {
  try {
    await run(tool, args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    const reason = stderr || (err as Error).message;
    throw new TsbuildError('SPECIAL_FILE', `cannot create ${target} with ${tool}: ${reason}`, { cause: err });
  }
}

/**
 * Hard-links `target` to `source` and keeps the link when the file is the entry as it stands:
 * a regular file of its size, owner, mode and mtime (to the second), without xattrs, and with no
 * other link than `source` and `target` (so no two paths of a tree built this way share an inode
 * their sources did not share). Otherwise, or when the link cannot be made (another filesystem,
 * say), nothing is left at `target`.
 */
export function linkedAsEntry(source: string, target: string, size: number, meta: Meta): boolean {
  try {
    linkSync(source, target);
  } catch {
    return false;
  }
  const linked = lstatSync(target);
  const same =
    linked.isFile() &&
    linked.nlink === 2 &&
    linked.size === size &&
    linked.uid === meta.uid &&
    linked.gid === meta.gid &&
    (linked.mode & 0o7777) === meta.mode &&
    Math.floor(linked.mtimeMs / 1000) === Math.floor(meta.mtime) &&
    (listXattrNames(target)?.length ?? 0) === 0;
  if (!same) unlinkSync(target);
  return same;
}
