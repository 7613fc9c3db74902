import { TsbuildError } from '../../layers/errors.js';
import type { IsolationBackend, IsolationMode } from './backend.js';
import { ChrootBackend, chrootAvailable } from './chroot.js';
import { findOciRuntime } from './find-runtime.js';
import { OciRuntimeBackend } from './oci-runtime.js';
import { RootlessBackend, rootlessAvailable } from './rootless.js';
import { currentIdMapping, type IdMapping } from './userns.js';

export interface SelectedBackend {
  readonly backend: IsolationBackend;
  /** Why this backend, for `--progress plain`. */
  readonly reason: string;
}

/** Picks the isolation backend for RUN steps; `auto` takes the best one this machine offers. */
export async function selectBackend(mode: IsolationMode): Promise<SelectedBackend> {
  const isRoot = process.getuid?.() === 0;
  switch (mode) {
    case 'auto': {
      const mapping = await currentIdMapping();
      if (mapping.kind === 'namespace' && isRoot) {
        if (await rootlessAvailable()) return { backend: new RootlessBackend(), reason: namespaceReason(mapping) };
        throw unavailable('auto', 'unshare, chroot, env, mount or sh is missing');
      }
      if (!isRoot) throw unavailable('auto', notInNamespace);
      const runtime = await findOciRuntime();
      if (runtime) return { backend: new OciRuntimeBackend({ runtimePath: runtime.path }), reason: `running as root and ${runtime.name} works here` };
      if (await chrootAvailable()) return { backend: new ChrootBackend(), reason: 'running as root without a working OCI runtime' };
      throw unavailable('auto', 'no OCI runtime (runc, crun) works here and unshare/chroot are missing');
    }
    case 'oci': {
      if (!isRoot) throw unavailable(mode, notInNamespace);
      const mapping = await currentIdMapping();
      const runtime = await findOciRuntime();
      if (mapping.kind === 'namespace') {
        if (!runtime) throw unavailable(mode, 'neither runc nor crun can run a container in this user namespace');
        return { backend: new OciRuntimeBackend({ runtimePath: runtime.path }), reason: `--isolation=oci with ${runtime.name} rootless, ${namespaceReason(mapping)}` };
      }
      if (!runtime) throw unavailable(mode, 'neither runc nor crun works on this machine');
      return { backend: new OciRuntimeBackend({ runtimePath: runtime.path }), reason: `--isolation=oci with ${runtime.name}` };
    }
    case 'chroot':
      if (!(await chrootAvailable())) throw unavailable(mode, isRoot ? 'unshare or chroot is missing' : 'it needs root');
      return { backend: new ChrootBackend(), reason: '--isolation=chroot' };
    case 'rootless': {
      if (!isRoot) throw unavailable(mode, notInNamespace);
      if (!(await rootlessAvailable())) throw unavailable(mode, 'unshare, chroot, env, mount or sh is missing');
      const mapping = await currentIdMapping();
      return { backend: new RootlessBackend(), reason: mapping.kind === 'namespace' ? `--isolation=rootless, ${namespaceReason(mapping)}` : '--isolation=rootless as root' };
    }
    case 'none':
      throw new TsbuildError('INTERNAL', '--isolation=none is set up by the build, not selected');
  }
}

const notInNamespace = 'this process is neither root nor uid 0 of a user namespace (the tsbuild command enters one for unprivileged users)';

/** Why a user-namespace backend (rootless, or oci in a user namespace), in the words of the mapping it runs under. */
function namespaceReason(mapping: Extract<IdMapping, { kind: 'namespace' }>): string {
  const user = mapping.hostUid === undefined ? 'an unmapped user' : `host uid ${mapping.hostUid}`;
  return mapping.ids > 1
    ? `in a user namespace as ${user}, with ${mapping.ids - 1} subordinate ids keeping other owners`
    : `in a single-id user namespace as ${user}: only root can own files`;
}

function unavailable(mode: IsolationMode, why: string): TsbuildError {
  return new TsbuildError('ISOLATION_UNAVAILABLE', `--isolation=${mode} cannot run RUN steps here: ${why}`);
}
