import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../support/repo-root.js';

export interface ProcessResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `tsbuild ARGS` as its own process (so an uncaught error or a hang shows), killed after `timeoutMs`. */
export function runCli(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ProcessResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist/cli/main.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** The error output is exactly one `error: ...` line, neither an internal error nor a stack trace. */
export function cleanErrorLine(stderr: string): string | undefined {
  const lines = stderr.split('\n').filter((line) => line !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('error: ')) return undefined;
  if (/internal error|^\s+at /m.test(stderr)) return undefined;
  return lines[0];
}
