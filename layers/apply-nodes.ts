import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { TsbuildError } from './errors.js';

// Node has no mkfifo, mknod or metadata-preserving copy, so coreutils programs do these.
const run = promisify(execFile);

/** Creates a FIFO at `target` (mode 0600; the caller sets the final mode). Fails if `target` exists. */
export async function makeFifo(target: string): Promise<void> {
  await runTool('mkfifo', ['-m', '600', '--', target], target);
}

/**
 * Creates a character or block device node at `target` (mode 0600). Needs root (CAP_MKNOD).
 * Fails if `target` exists.
 */
export async function makeDevice(
  target: string,
  kind: 'char' | 'block',
  major: number,
  minor: number,
): Promise<void> {
  const args = ['-m', '600', '--', target, kind === 'char' ? 'c' : 'b', String(major), String(minor)];
  await runTool('mknod', args, target);
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
