/** Runs `tsbuild plan` (the CLI's own `run`, with its error mapping) on each file it is given, reporting each outcome. */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { run } from '../../cli/run.js';

export interface FuzzJob {
  readonly files: readonly string[];
  readonly first: number;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
}

export type FuzzMessage = { readonly kind: 'start'; readonly index: number } | { readonly kind: 'done'; readonly index: number; readonly code: number; readonly stderr: string; readonly stdout: string };

// `node --test` also loads every file under test/ on its own: only as a worker is there work to do.
if (!isMainThread) {
  const job = workerData as FuzzJob;
  for (let index = job.first; index < job.files.length; index++) {
    parentPort!.postMessage({ kind: 'start', index } satisfies FuzzMessage);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await run(['plan', '-f', job.files[index]!, ...job.args], { stdout: (text) => stdout.push(text), stderr: (text) => stderr.push(text), env: job.env });
    parentPort!.postMessage({ kind: 'done', index, code, stderr: stderr.join('\n'), stdout: stdout.join('\n').slice(0, 1000) } satisfies FuzzMessage);
  }
}
