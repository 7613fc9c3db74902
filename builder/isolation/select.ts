import { TsbuildError } from '../../layers/errors.js';
import type { IsolationBackend, IsolationMode } from './backend.js';
import { findOciRuntime, ociRuntimeProblem } from './find-runtime.js';
import { needsRootOrUserNamespaces, withoutSysAdmin } from './isolation-advice.js';
import { OciRuntimeBackend } from './oci-runtime.js';
import { currentIdMapping, type IdMapping } from './userns.js';

// The other backends and their probes load only when considered: a build where runc works never
// needs the namespace launcher, nor the in-place code.
const chroot = () => import('./chroot.js');
const rootlessModule = () => import('./rootless.js');
const namespaceProbe = () => import('./namespace-probe.js');
const inPlace = () => import('../rootfs/in-place.js');

/** How RUN steps run: through a backend, or in place on this container's own root filesystem. */
export type IsolationChoice =
  | { readonly kind: 'backend'; readonly backend: IsolationBackend; /** Why, for `--progress plain`. */ readonly reason: string }
  | { readonly kind: 'in-place'; readonly reason: string };

export interface SelectOptions {
  /** `--force-in-place`: lets `none` replace the root filesystem outside a detected container. */
  readonly forceInPlace?: boolean;
  /** Where the result of probing the OCI runtimes is remembered between builds. */
  readonly probeCacheDir?: string;
}

/**
 * Picks how RUN steps are isolated. `auto` takes, as root, a working OCI runtime, else namespaces
 * and chroot, else (in a container that may neither mount nor unshare, as a Kubernetes pod without
 * CAP_SYS_ADMIN) the build in place; as uid 0 of a user namespace, `rootless`. Every refusal is
 * one line naming the cause and what would make the mode work.
 */
export async function selectIsolation(mode: IsolationMode, options: SelectOptions = {}): Promise<IsolationChoice> {
  const uid = process.getuid?.() ?? 0;
  const mapping = await currentIdMapping();
  const hostRoot = uid === 0 && mapping.kind === 'host';
  switch (mode) {
    case 'auto': {
      if (mapping.kind === 'namespace' && uid === 0) return rootless(mode, mapping);
      if (!hostRoot) throw await notRootNoNamespace(mode, uid);
      const runtime = await findOciRuntime(options.probeCacheDir);
      if (runtime) return backend(new OciRuntimeBackend({ runtimePath: runtime.path }), `running as root and ${runtime.name} works here`);
      const problem = await chrootProblem();
      if (problem === undefined) return backend(new (await chroot()).ChrootBackend(), 'running as root without a working OCI runtime');
      if (await disposableContainer()) {
        return { kind: 'in-place', reason: `running as root in a container that cannot make namespaces (${problem}), so steps run in place on its root filesystem` };
      }
      throw unavailable(mode, `no OCI runtime works (${await ociRuntimeProblem()}) and namespaces cannot be made (${problem}); in a disposable container, --isolation=none --force-in-place builds in place`);
    }
    case 'oci': {
      if (uid !== 0) throw await notRootNoNamespace(mode, uid);
      const runtime = await findOciRuntime(options.probeCacheDir);
      if (mapping.kind === 'namespace') {
        if (!runtime) throw unavailable(mode, `neither runc nor crun can run a container in this user namespace (${await ociRuntimeProblem()}); --isolation=rootless needs no runtime`);
        return backend(new OciRuntimeBackend({ runtimePath: runtime.path }), `--isolation=oci with ${runtime.name} rootless, ${namespaceReason(mapping)}`);
      }
      if (!runtime) throw unavailable(mode, `${await ociRuntimeProblem()}; an OCI runtime needs CAP_SYS_ADMIN. ${withoutSysAdmin}`);
      return backend(new OciRuntimeBackend({ runtimePath: runtime.path }), `--isolation=oci with ${runtime.name}`);
    }
    case 'chroot': {
      if (!hostRoot) throw unavailable(mode, `it needs root, and this process is ${uid === 0 ? 'root of a user namespace' : `uid ${uid}`}; use --isolation=rootless instead (it needs user namespaces)`);
      const problem = await chrootProblem();
      if (problem !== undefined) throw unavailable(mode, `${problem}; it needs CAP_SYS_ADMIN to make namespaces and mount. ${withoutSysAdmin}`);
      return backend(new (await chroot()).ChrootBackend(), '--isolation=chroot');
    }
    case 'rootless': {
      if (uid !== 0) throw await notRootNoNamespace(mode, uid);
      if (mapping.kind === 'namespace') return rootless(mode, mapping);
      const problem = await chrootProblem();
      if (problem !== undefined) throw unavailable(mode, `${problem}; as real root it needs CAP_SYS_ADMIN. ${withoutSysAdmin}`);
      return backend(new (await rootlessModule()).RootlessBackend(), '--isolation=rootless as root');
    }
    case 'none':
      if (uid !== 0) {
        throw unavailable(mode, `building in place replaces the root filesystem and needs root, as kaniko does; run the container as uid 0 (Kubernetes: runAsUser: 0), or use --isolation=rootless where user namespaces are allowed`);
      }
      if (options.forceInPlace) return { kind: 'in-place', reason: '--isolation=none with --force-in-place' };
      if (!(await disposableContainer())) {
        throw new TsbuildError('ISOLATION_UNAVAILABLE', '--isolation=none replaces the root filesystem: run it only in a disposable container, or pass --force-in-place');
      }
      return { kind: 'in-place', reason: 'in place on this container\'s root filesystem' };
  }
}

/** Whether this process runs in a container (see `inContainer`), or is pid 1, as a container's entry point is. */
async function disposableContainer(): Promise<boolean> {
  return process.pid === 1 || (await inPlace()).inContainer();
}

function backend(chosen: IsolationBackend, reason: string): IsolationChoice {
  return { kind: 'backend', backend: chosen, reason };
}

/** The rootless backend as uid 0 of a user namespace, when it can make its namespaces there. */
async function rootless(mode: IsolationMode, mapping: Extract<IdMapping, { kind: 'namespace' }>): Promise<IsolationChoice> {
  const { RootlessBackend, rootlessAvailable } = await rootlessModule();
  const problem = (await rootlessAvailable()) ? await (await namespaceProbe()).namespaceProblem() : 'util-linux unshare or setpriv is missing';
  if (problem !== undefined) {
    const masked = /proc/.test(problem) ? '; the container\'s /proc is masked, so a new one cannot be mounted (Kubernetes: securityContext.procMount: Unmasked)' : '';
    throw unavailable(mode, `in a user namespace, yet ${problem}${masked}`);
  }
  return backend(new RootlessBackend(), mode === 'auto' ? namespaceReason(mapping) : `--isolation=rootless, ${namespaceReason(mapping)}`);
}

/** Why the chroot backend cannot run here, or undefined when it can. */
async function chrootProblem(): Promise<string | undefined> {
  if (!(await (await chroot()).chrootAvailable())) return 'util-linux unshare or setpriv is missing';
  return (await namespaceProbe()).namespaceProblem();
}

/** An unprivileged process outside a user namespace: the tsbuild command could not enter one. */
async function notRootNoNamespace(mode: IsolationMode, uid: number): Promise<TsbuildError> {
  const why = (await (await namespaceProbe()).userNamespaceProblem()) ?? 'it did not enter one';
  return unavailable(mode, `this process runs as uid ${uid} and cannot create a user namespace (${why}). ${needsRootOrUserNamespaces}`);
}

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
