import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { TsbuildError } from './errors.js';

// Node has no mkfifo or mknod, so the coreutils programs create these nodes.
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

async function runTool(tool: string, args: string[], target: string): Promise<void> {
  try {
    await run(tool, args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    const reason = stderr || (err as Error).message;
    throw new TsbuildError('SPECIAL_FILE', `cannot create ${target} with ${tool}: ${reason}`, { cause: err });
  }
}
