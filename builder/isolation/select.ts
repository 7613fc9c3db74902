import { TsbuildError } from '../../layers/errors.js';
import type { IsolationBackend, IsolationMode } from './backend.js';
import { ChrootBackend, chrootAvailable } from './chroot.js';
import { findOciRuntime } from './find-runtime.js';
import { OciRuntimeBackend } from './oci-runtime.js';

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
      if (!isRoot) throw unavailable('auto', 'running RUN steps without root is not supported yet');
      const runtime = await findOciRuntime();
      if (runtime) return { backend: new OciRuntimeBackend({ runtimePath: runtime.path }), reason: `running as root and ${runtime.name} works here` };
      if (await chrootAvailable()) return { backend: new ChrootBackend(), reason: 'running as root without a working OCI runtime' };
      throw unavailable('auto', 'no OCI runtime (runc, crun) works here and unshare/chroot are missing');
    }
    case 'oci': {
      const runtime = await findOciRuntime();
      if (!runtime) throw unavailable(mode, isRoot ? 'neither runc nor crun works on this machine' : 'it needs root');
      return { backend: new OciRuntimeBackend({ runtimePath: runtime.path }), reason: `--isolation=oci with ${runtime.name}` };
    }
    case 'chroot':
      if (!(await chrootAvailable())) throw unavailable(mode, isRoot ? 'unshare or chroot is missing' : 'it needs root');
      return { backend: new ChrootBackend(), reason: '--isolation=chroot' };
    case 'rootless':
    case 'none':
      throw unavailable(mode, 'not supported yet');
  }
}

function unavailable(mode: IsolationMode, why: string): TsbuildError {
  return new TsbuildError('ISOLATION_UNAVAILABLE', `--isolation=${mode} cannot run RUN steps here: ${why}`);
}
