import { fileURLToPath } from 'node:url';
import type { IsolationMode } from '../builder/isolation/backend.js';
import { dieWithParent, planUserNamespace, runInUserNamespace, singleIdPlan, userNamespaceEnv, type UserNamespacePlan } from '../builder/isolation/userns.js';
import { LineBuffer } from '../builder/run/line-buffer.js';
import { TsbuildError } from '../layers/errors.js';
import type { CliIo } from './io.js';
import { nodeCommand } from '../builder/isolation/this-node.js';

/** The command-line entry point, run again inside the namespace. */
const mainScript = fileURLToPath(new URL('./main.js', import.meta.url));

/** The isolation modes an unprivileged user runs in a user namespace. */
const namespaceModes: readonly IsolationMode[] = ['auto', 'rootless', 'oci'];

/**
 * For an unprivileged user building with `--isolation auto`, `rootless` or `oci`: runs this same
 * command line again as uid 0 of a new user namespace (see userns.ts) and returns its exit code,
 * after warning when only a single id can be mapped. Subordinate ranges that `newuidmap` refuses
 * fall back to the single-id mapping. Returns undefined when the build should run in this process:
 * as root, with another isolation, inside the namespace already, or when no user namespace can be
 * made (the build then fails, saying what the container needs, only if it has a RUN step).
 */
export async function enterUserNamespace(argv: readonly string[], isolation: IsolationMode, io: CliIo): Promise<number | undefined> {
  if (io.env[userNamespaceEnv] !== undefined && process.getuid?.() === 0) await dieWithParent(io.env);
  if (process.getuid?.() === 0 || !namespaceModes.includes(isolation)) return undefined;
  if (io.env[userNamespaceEnv] !== undefined) {
    throw new TsbuildError('USERNS_UNAVAILABLE', `${userNamespaceEnv} is set, yet this process is not uid 0 of a user namespace`);
  }
  const stdout = new LineBuffer((text) => io.stdout(text.slice(0, -1)));
  const stderr = new LineBuffer((text) => io.stderr(text.slice(0, -1)));
  const [command, ...loaderArgs] = nodeCommand() as [string, ...string[]];
  // The warning only matters once the namespace exists; without one the build may not need it.
  const reexec = (plan: UserNamespacePlan): Promise<number> =>
    runInUserNamespace(command, [...loaderArgs, ...process.execArgv, mainScript, ...argv], plan, {
      env: io.env,
      ...(plan.warning !== undefined ? { onEntered: () => io.stderr(`warning: ${plan.warning}`) } : {}),
      stdout: (chunk) => stdout.push(chunk),
      stderr: (chunk) => stderr.push(chunk),
      ...(io.signal ? { signal: io.signal } : {}),
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
