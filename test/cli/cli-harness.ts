import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../cli/run.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the CLI in-process with captured output and its own local store. The build cache is the
 * test run's private one (TSBUILD_CACHE_DIR), never the user's.
 */
export async function tsbuild(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await run(args, {
    stdout: (t) => stdout.push(t),
    stderr: (t) => stderr.push(t),
    env: {
      TSBUILD_STORE: path.join(os.tmpdir(), 'tsbuild-test-store-unused'),
      ...(process.env.TSBUILD_CACHE_DIR !== undefined ? { TSBUILD_CACHE_DIR: process.env.TSBUILD_CACHE_DIR } : {}),
      ...env,
    },
  });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
