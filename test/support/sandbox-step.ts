import type { SandboxStep, StepSandbox } from '../../builder/isolation/backend.js';

export interface ShellStepResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `script` with /bin/sh as one step of `sandbox`, as root in `/` with PATH=/bin unless `overrides` say otherwise. */
export async function runShellStep(sandbox: StepSandbox, script: string, overrides: Partial<SandboxStep> = {}): Promise<ShellStepResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const result = await sandbox.run({
    args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] },
    ...overrides,
    stdout: (chunk) => stdout.push(chunk),
    stderr: (chunk) => stderr.push(chunk),
  });
  return { exitCode: result.exitCode, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
}
