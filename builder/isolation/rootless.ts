import { readFile } from 'node:fs/promises';
import type { IsolationBackend, RunResult, RunSpec, SandboxSpec, StepSandbox } from './backend.js';
import { openNamespaceSandbox } from './namespace-step-sandbox.js';
import { namespaceSandboxAvailable, runInNamespaces, type NamespaceIds } from './namespace-sandbox.js';
import { idMapped } from './userns.js';

/**
 * True when this process is uid 0, in a user namespace or the initial one, and the host has
 * util-linux unshare and setpriv.
 */
export function rootlessAvailable(): Promise<boolean> {
  return namespaceSandboxAvailable();
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
 * real root, in new namespaces owned by the current user namespace (see namespace-sandbox.ts). The
 * launcher binds the host's device nodes where the namespace may not create them and the host's
 * /sys read-only where it may not mount sysfs. In a single-id namespace every process runs as root.
 */
export class RootlessBackend implements IsolationBackend {
  readonly name = 'rootless' as const;

  async run(spec: RunSpec): Promise<RunResult> {
    spec.signal?.throwIfAborted();
    return runInNamespaces(spec, { name: this.name, ids: await namespaceIds() });
  }

  async openSandbox(spec: SandboxSpec): Promise<StepSandbox> {
    return openNamespaceSandbox(spec, { name: this.name, ids: await namespaceIds() });
  }
}
