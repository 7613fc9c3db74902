/**
 * The launcher's last step: exec the command as the environment's PATH finds it, with the signal
 * state a fresh process expects (Node ignores SIGPIPE and SIGXFSZ, and ignored signals survive
 * execve). Returns only when no candidate could be exec'd.
 */
import { defaultSignalAction, execve, unblockAllSignals } from './syscalls.js';

/** The PATH a shell uses when the environment has none. */
const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Errors after which the next PATH entry is tried, as execvp(3) does. */
const tryNext = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'ENOEXEC', 'ELOOP', 'ENAMETOOLONG']);

/** Every standard signal back to its default action, none blocked. */
export function resetSignals(): void {
  for (let signum = 1; signum < 32; signum++) defaultSignalAction(signum);
  unblockAllSignals();
}

/** The paths to try for `name`: itself when it has a slash, else each PATH directory. */
function candidates(name: string, env: readonly string[]): string[] {
  if (name.includes('/')) return [name];
  const path = env.find((entry) => entry.startsWith('PATH='))?.slice('PATH='.length) ?? defaultPath;
  return path.split(':').map((dir) => `${dir === '' ? '.' : dir}/${name}`);
}

/**
 * Execs `args` with `env`; on failure returns the shell's exit status and message: 127 when
 * nothing was found, 126 when something found could not be executed.
 */
export function execCommand(args: readonly string[], env: readonly string[]): { exitCode: number; message: string } {
  const name = args[0] as string;
  let found: string | undefined;
  for (const path of candidates(name, env)) {
    const code = execve(path, args, env);
    if (code !== 'ENOENT' && code !== 'ENOTDIR') found = code;
    if (!tryNext.has(code)) break;
  }
  if (found === undefined) return { exitCode: 127, message: `${name}: command not found` };
  return { exitCode: 126, message: `${name}: cannot execute (${found})` };
}
