import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface CommandResult {
  readonly seconds: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** How much of a failed command's output goes into its error: enough for the last few lines. */
const OUTPUT_TAIL = 4000;

/**
 * Runs a program to completion and times it (wall clock, from spawn to exit). Throws an Error whose
 * message is the command and the last lines of its output when it exits non-zero.
 */
export async function runCommand(file: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CommandResult> {
  const started = performance.now();
  const child = spawn(file, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    output = (output + text).slice(-OUTPUT_TAIL);
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
    output = (output + text).slice(-OUTPUT_TAIL);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${[file, ...args].join(' ')} exited with ${code}: ${lastLines(output)}`);
  return { seconds, stdout, stderr };
}

/** The last non-empty lines of some output, joined into one line. */
export function lastLines(output: string, count = 3): string {
  return output.trim().split('\n').filter((line) => line.trim() !== '').slice(-count).join(' | ');
}
