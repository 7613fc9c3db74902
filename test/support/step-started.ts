import { spawn, type ChildProcess } from 'node:child_process';

/** A command started in the background whose RUN step has printed `started`. */
export interface StartedBuild {
  readonly child: ChildProcess;
  /** Resolves with the exit code and signal once the command has ended. */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What the command wrote to stderr so far. */
  stderr(): string;
}

/**
 * Starts `command args` (a build with `--progress plain` whose RUN step echoes `started`) and
 * resolves once that line is out; rejects, with the output, if the command ends first.
 */
export async function startUntilStepStarted(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<StartedBuild> {
  const child = spawn(command, [...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/^started$/m.test(stderr) || stderr.includes(' started\n')) resolve();
    });
    child.once('close', () => reject(new Error(`the build ended before its step started: ${stderr}`)));
  });
  return { child, ended, stderr: () => stderr };
}
