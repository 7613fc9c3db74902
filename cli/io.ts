import type { StatusTerminal } from './transfer-status.js';

/** Where a command writes, what environment it reads and what can stop it: the process's own, or a test's. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  /** Set when stderr is a terminal: progress then keeps a live status line there. */
  readonly stderrTerminal?: StatusTerminal;
  /** Where `--output …,dest=-` writes its bytes; the process's stdout when absent. */
  readonly stdoutStream?: NodeJS.WritableStream;
  /** The script this process started from (dist/cli/start.cjs or cli/main.js), which a build re-executes in a user namespace; cli/main.js when absent. */
  readonly entryScript?: string;
}

export const processIo: CliIo = {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
};
