/**
 * A small process that outlives a build killed outright (SIGKILL, out of memory) and then sweeps
 * its workspace, so that the step's container, the mounts and the secret files go within a
 * moment rather than at the next build. It waits on a pipe from the build: the kernel closes the
 * pipe when the build dies, however it dies, and the sweep then runs in Node. While it waits it is
 * the host's `sh` (far smaller than an idle Node); where there is none (a builder image holding
 * only node and tsbuild) it is Node from the start. It has its own session, so signals meant for
 * the build's terminal leave it alone.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../../layers/errors.js';
import { findHostTool } from '../host/host-tools.js';
import { nodeCommand } from '../host/this-node.js';

const watchdogMain = fileURLToPath(new URL('./workspace-watchdog-main.js', import.meta.url));

/** Starts the watchdog of the workspace `name` in `root`; returns how to stop it once the build removed the workspace itself. */
export async function startWatchdog(root: string, name: string): Promise<() => Promise<void>> {
  const shell = findHostTool('sh');
  const sweep = [...nodeCommand(), watchdogMain, root, name];
  const [command, ...args] = shell ? [shell, '-c', 'read -r line; exec "$@"', 'tsbuild-watchdog', ...sweep] : sweep;
  const child = spawn(command, args, {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
    // Not the build's environment, which may hold secrets given with --secret env=.
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new TsbuildError('WORKSPACE', `cannot start the workspace watchdog (${command}): ${error.message}`, { cause: error })));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Neither the process nor its idle pipe keeps this process running.
  child.unref();
  // Stopping waits until it is gone, so a finished build leaves no process behind.
  return async () => {
    child.ref();
    child.kill('SIGKILL');
    await exited;
  };
}
