import { TsbuildError } from '../../layers/errors.js';
import { LineBuffer } from './line-buffer.js';
import type { IsolationMode } from './backend.js';
import { nodeCommand } from '../host/this-node.js';
import { dieWithParent, planUserNamespace, runInUserNamespace, singleIdPlan, userNamespaceEnv, type UserNamespacePlan } from './userns.js';

/** The node script to run again inside the namespace, and what the re-executed process reads and writes. */
export interface ReexecCommand {
  readonly script: string;
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly signal?: AbortSignal;
}

/** The isolation modes an unprivileged user runs in a user namespace. */
const namespaceModes: readonly IsolationMode[] = ['auto', 'rootless', 'oci'];

/**
 * For an unprivileged user building with `--isolation auto`, `rootless` or `oci`: runs the same
 * node script and arguments again as uid 0 of a new user namespace (see userns.ts) and returns its exit code,
 * after warning when only a single id can be mapped. Subordinate ranges that `newuidmap` refuses
 * fall back to the single-id mapping. Returns undefined when the build should run in this process:
 * as root, with another isolation, inside the namespace already, or when no user namespace can be
 * made (the build then fails, saying what the container needs, only if it has a RUN step).
 */
export async function enterUserNamespace(cmd: ReexecCommand, isolation: IsolationMode): Promise<number | undefined> {
  if (cmd.env[userNamespaceEnv] !== undefined && process.getuid?.() === 0) await dieWithParent(cmd.env);
  if (process.getuid?.() === 0 || !namespaceModes.includes(isolation)) return undefined;
  if (cmd.env[userNamespaceEnv] !== undefined) {
    throw new TsbuildError('USERNS_UNAVAILABLE', `${userNamespaceEnv} is set, yet this process is not uid 0 of a user namespace`);
  }
  const stdout = new LineBuffer((text) => cmd.stdout(text.slice(0, -1)));
  const stderr = new LineBuffer((text) => cmd.stderr(text.slice(0, -1)));
  const [command, ...loaderArgs] = nodeCommand() as [string, ...string[]];
  // The warning only matters once the namespace exists; without one the build may not need it.
  const reexec = (plan: UserNamespacePlan): Promise<number> =>
    runInUserNamespace(command, [...loaderArgs, ...process.execArgv, cmd.script, ...cmd.argv], plan, {
      env: cmd.env,
      ...(plan.warning !== undefined ? { onEntered: () => cmd.stderr(`warning: ${plan.warning}`) } : {}),
      stdout: (chunk) => stdout.push(chunk),
      stderr: (chunk) => stderr.push(chunk),
      ...(cmd.signal ? { signal: cmd.signal } : {}),
    });
  try {
    try {
      return await reexec(await planUserNamespace());
    } catch (error) {
      if (!(error instanceof TsbuildError && error.code === 'USERNS_ID_MAP')) throw error;
      return await reexec(singleIdPlan(error.message));
    }
  } catch (error) {
    if (error instanceof TsbuildError && error.code === 'USERNS_UNAVAILABLE') return undefined;
    throw error;
  } finally {
    stdout.flush();
    stderr.flush();
  }
}
