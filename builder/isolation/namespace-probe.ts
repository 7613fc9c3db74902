import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { commandFailure } from '../../layers/errors.js';
import { findHostTool, systemBinDirs } from '../host/host-tools.js';

const execFileAsync = promisify(execFile);

let probed: Promise<string | undefined> | undefined;
let userProbed: Promise<string | undefined> | undefined;

/**
 * Why this process cannot make the namespaces the chroot and rootless backends run steps in, or
 * undefined when it can: `unshare` makes mount, uts, ipc and pid namespaces and mounts a fresh
 * `/proc` in them, as those backends do. In a container without CAP_SYS_ADMIN, or under a seccomp
 * profile that blocks `unshare`, or where `/proc` is masked, this fails with the kernel's reason.
 * Probed once per process.
 */
export function namespaceProblem(): Promise<string | undefined> {
  probed ??= unshareProblem(['--mount', '--uts', '--ipc', '--pid', '--fork', '--mount-proc', '--propagation', 'private']);
  return probed;
}

/** Why this process cannot create a user namespace (`unshare --user`), or undefined when it can. Probed once. */
export function userNamespaceProblem(): Promise<string | undefined> {
  userProbed ??= unshareProblem(['--user', '--map-root-user']);
  return userProbed;
}

/** Runs `unshare OPTIONS -- true` with the host's tools: undefined when it works, else unshare's first line. */
async function unshareProblem(options: readonly string[]): Promise<string | undefined> {
  const unshare = findHostTool('unshare');
  if (unshare === undefined) return 'unshare (util-linux) is not installed';
  try {
    await execFileAsync(unshare, [...options, '--', 'true'], { env: { PATH: systemBinDirs.join(':') }, timeout: 15_000 });
    return undefined;
  } catch (error) {
    return commandFailure(error);
  }
}
