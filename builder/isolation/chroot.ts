import type { IsolationBackend, RunResult, RunSpec } from './backend.js';
import { namespaceSandboxAvailable, runInNamespaces } from './namespace-sandbox.js';
import type { NamespaceSandbox, SetupSteps } from './namespace-setup.js';

/** As real root the setup makes the device nodes, mounts sysfs and writes the hostname sysctl. */
const chrootSteps: SetupSteps = {
  devices: `mknod -m 0666 "$dev/null" c 1 3
mknod -m 0666 "$dev/zero" c 1 5
mknod -m 0666 "$dev/full" c 1 7
mknod -m 0666 "$dev/random" c 1 8
mknod -m 0666 "$dev/urandom" c 1 9
mknod -m 0666 "$dev/tty" c 5 0`,
  sys: 'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$sys"',
  hostname: 'printf %s "$hostname" > "$proc/sys/kernel/hostname"',
  tools: ['mknod'],
};

/** Real root has every id, so the process gets its user, group and supplementary groups. */
const chrootSandbox: NamespaceSandbox = { name: 'chroot', steps: chrootSteps, ids: { canSwitchIds: true, ttyGidMapped: true } };

/** True when this process is root and the host has the util-linux and coreutils tools the backend runs. */
export function chrootAvailable(): Promise<boolean> {
  return namespaceSandboxAvailable(chrootSteps);
}

/**
 * Runs as root without an OCI runtime, in new namespaces made by util-linux `unshare` and entered
 * with host tools (see namespace-sandbox.ts).
 */
export class ChrootBackend implements IsolationBackend {
  readonly name = 'chroot' as const;

  run(spec: RunSpec): Promise<RunResult> {
    return runInNamespaces(spec, chrootSandbox);
  }
}
