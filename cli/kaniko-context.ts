import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TsbuildError } from '../builder/index.js';

/** A build context ready to build from, and how to remove what was unpacked for it. */
export interface KanikoContext {
  readonly context: string;
  readonly cleanup: () => Promise<void>;
}

/**
 * kaniko's `--context tar://FILE.tar.gz` and `tar://stdin`: the gzipped tarball is unpacked with
 * GNU tar (which keeps members inside the directory) into a temporary directory that is built as
 * `dir://`. Any other context is passed on as it is.
 */
export async function unpackKanikoContext(context: string, cwd: string, stdin: NodeJS.ReadableStream = process.stdin): Promise<KanikoContext> {
  if (!context.startsWith('tar://')) return { context, cleanup: async () => {} };
  const source = context.slice('tar://'.length);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-kaniko-context-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await untar(source === 'stdin' ? '-' : path.resolve(cwd, source), dir, source === 'stdin' ? stdin : undefined);
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { context: `dir://${dir}`, cleanup };
}

function untar(file: string, dir: string, input: NodeJS.ReadableStream | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-xz', '--no-same-owner', '--no-same-permissions', '-f', file, '-C', dir], { stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (input && child.stdin) input.pipe(child.stdin);
    child.on('error', (err) => reject(new TsbuildError('SOURCE_READ', `cannot unpack the context ${file === '-' ? 'from stdin' : file}: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new TsbuildError('SOURCE_READ', `cannot unpack the context ${file === '-' ? 'from stdin' : file} (a .tar.gz is expected): ${stderr.trim().split('\n')[0] ?? `tar exited with ${code}`}`));
    });
  });
}
