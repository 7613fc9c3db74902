import { readFile } from 'node:fs/promises';
import type { IsolationBackend, RunResult, RunSpec } from './backend.js';
import { namespaceSandboxAvailable, runInNamespaces } from './namespace-sandbox.js';
import type { NamespaceIds, SetupSteps } from './namespace-setup.js';
import { idMapped } from './userns.js';

/** Host device nodes bound into the container's `/dev` (a user namespace may not create nodes). */
const deviceNodes = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/**
 * As uid 0 of a user namespace the setup binds the host's device nodes over empty files; binds
 * the host's `/sys` (with its submounts) read-only, since sysfs can only be mounted by the owner
 * of the network namespace; and sets the host name with hostname(1), since the sysctl file belongs
 * to the initial namespace's root.
 */
const rootlessSteps: SetupSteps = {
  devices: `for node in ${deviceNodes.join(' ')}; do
  : > "$dev/$node"
  mount --bind "/dev/$node" "$dev/$node"
done`,
  sys: `mount --rbind /sys "$sys"
mount -o remount,bind,ro "$sys"`,
  hostname: 'hostname "$hostname"',
  tools: ['hostname'],
};

/**
 * True when this process is uid 0, in a user namespace or the initial one, and the host has the
 * util-linux and coreutils tools the backend runs.
 */
export function rootlessAvailable(): Promise<boolean> {
  return namespaceSandboxAvailable(rootlessSteps);
}

/** What this process's user namespace lets a RUN process be. */
async function namespaceIds(): Promise<NamespaceIds> {
  const [uidMap, gidMap, setgroups] = await Promise.all(
    ['uid_map', 'gid_map', 'setgroups'].map((name) => readFile(`/proc/self/${name}`, 'utf8').catch(() => '')),
  );
  const singleId = !idMapped(uidMap, 1) || !idMapped(gidMap, 1) || setgroups.trim() === 'deny';
  return { canSwitchIds: !singleId, ttyGidMapped: idMapped(gidMap, 5) };
}

/**
 * Runs as uid 0 of a user namespace (what `tsbuild build` enters for an unprivileged user), or as
 * real root, in new namespaces owned by the current user namespace (see namespace-sandbox.ts). In
 * a single-id namespace every process runs as root.
 */
export class RootlessBackend implements IsolationBackend {
  readonly name = 'rootless' as const;

  async run(spec: RunSpec): Promise<RunResult> {
    spec.signal?.throwIfAborted();
    return runInNamespaces(spec, { name: this.name, steps: rootlessSteps, ids: await namespaceIds() });
  }
}
