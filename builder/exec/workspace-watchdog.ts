/**
 * A small process that outlives a build killed outright (SIGKILL, out of memory) and then sweeps
 * its workspace, so that the step's container, the mounts and the secret files go within a
 * moment rather than at the next build. It is `sh` blocked reading a pipe from the build: the
 * kernel closes the pipe when the build dies, however it dies, and `sh` then runs the sweep in
 * Node. It has its own session, so signals meant for the build's terminal leave it alone.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TsbuildError } from '../../layers/errors.js';

const watchdogMain = fileURLToPath(new URL('./workspace-watchdog-main.js', import.meta.url));

/** Starts the watchdog of the workspace `name` in `root`; returns how to stop it once the build removed the workspace itself. */
export async function startWatchdog(root: string, name: string): Promise<() => void> {
  const child = spawn('sh', ['-c', 'read -r line; exec "$@"', 'tsbuild-watchdog', process.execPath, watchdogMain, root, name], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true,
    // Not the build's environment, which may hold secrets given with --secret env=.
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new TsbuildError('WORKSPACE', `cannot start the workspace watchdog (sh): ${error.message}`, { cause: error })));
  });
  // Neither the process nor its idle pipe keeps this process running.
  child.unref();
  return () => {
    child.kill('SIGKILL');
  };
}
