import type { ProcessUser } from '../exec/user-db.js';
import type { Workspace } from '../workspace/workspace.js';
import type { IsolationBackend, StepSandbox } from '../isolation/backend.js';
import type { RunStep } from '../model/plan.js';
import type { PreparedRootfs } from '../rootfs/prepare.js';
import { buildHostname, etcBindMounts } from './etc-files.js';
import { createMountStubs, systemMountPoints, type MountStubs } from './mount-points.js';

/**
 * A sandbox that runs a stage's consecutive RUN steps of one shape, with the mount points it
 * needs in the rootfs for as long as it runs. Closing stops the sandbox, then removes the stubs.
 */
export interface StepSession {
  /** The shape of the steps it runs (see `sessionShape`). */
  readonly shape: string;
  /** The rootfs it runs in. */
  readonly prepared: PreparedRootfs;
  readonly sandbox: StepSandbox;
  readonly stubs: MountStubs;
  /** Root-relative paths of the bind destinations: kept out of every snapshot. */
  readonly bindPaths: readonly string[];
  /** Stub directories a step wrote into: from then on part of the stage's files, not stubs. */
  readonly usedStubs: Set<string>;
  close(): Promise<void>;
}

/**
 * What must match for steps to share a sandbox: no `--mount`, the same network and extra hosts,
 * and a user with no supplementary groups (a step in a shared sandbox can set only uid and gid).
 * Undefined when `step` needs a sandbox of its own, or the backend has no shared ones.
 */
export function sessionShape(step: RunStep, user: ProcessUser, backend: IsolationBackend): string | undefined {
  if (!backend.openSandbox || step.mounts.length > 0 || user.additionalGids.length > 0 || step.security !== 'sandbox') return undefined;
  return JSON.stringify({ network: step.network, extraHosts: step.extraHosts ?? [] });
}

/** Opens a session for steps of `shape` like `step` in `prepared`. */
export async function openStepSession(step: RunStep, shape: string, prepared: PreparedRootfs, backend: IsolationBackend, workspace: Workspace): Promise<StepSession> {
  const open = backend.openSandbox?.bind(backend);
  if (!open) throw new Error('this isolation backend has no shared sandboxes');
  const etcDir = await workspace.newDir('run');
  const binds = await etcBindMounts(etcDir, step.extraHosts);
  const stubs = await createMountStubs(prepared.dir, [...systemMountPoints, ...binds.map((b) => ({ destination: b.destination, kind: 'file' as const }))]);
  const resolved = binds.map((b) => ({ ...b, destination: stubs.resolved.get(b.destination) ?? b.destination }));
  let sandbox: StepSandbox;
  try {
    sandbox = await open({ rootfs: prepared.dir, hostname: buildHostname, network: step.network, binds: resolved, scratchDir: await workspace.newDir('run-scratch') });
  } catch (error) {
    await stubs.remove();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    shape,
    prepared,
    sandbox,
    stubs,
    bindPaths: resolved.map((b) => b.destination.slice(1)),
    usedStubs: new Set(),
    close: () =>
      (closing ??= (async () => {
        try {
          await sandbox.close();
        } finally {
          await stubs.remove();
        }
      })()),
  };
}
