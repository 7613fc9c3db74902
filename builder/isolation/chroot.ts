import type { IsolationBackend, RunResult, RunSpec, SandboxSpec, StepSandbox } from './backend.js';
import { openNamespaceSandbox } from './namespace-step-sandbox.js';
import { namespaceSandboxAvailable, runInNamespaces, type NamespaceSandbox } from './namespace-sandbox.js';

/** Real root has every id, so the process gets its user, group and supplementary groups. */
const chrootSandbox: NamespaceSandbox = { name: 'chroot', ids: { canSwitchIds: true, ttyGidMapped: true } };

/** True when this process is root and the host has util-linux unshare and setpriv. */
export function chrootAvailable(): Promise<boolean> {
  return namespaceSandboxAvailable();
}

/**
 * Runs as root without an OCI runtime, in new namespaces made by util-linux `unshare` and entered
 * by our launcher (see namespace-sandbox.ts): the process runs in its own root (pivot_root), with
 * the default container capabilities, no_new_privs and our seccomp filter.
 */
export class ChrootBackend implements IsolationBackend {
  readonly name = 'chroot' as const;

  run(spec: RunSpec): Promise<RunResult> {
    return runInNamespaces(spec, chrootSandbox);
  }

  openSandbox(spec: SandboxSpec): Promise<StepSandbox> {
    return openNamespaceSandbox(spec, chrootSandbox);
  }
}
