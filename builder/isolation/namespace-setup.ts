import type { RunSpec } from './backend.js';

/**
 * The setup lines where the namespace backends differ. They run in the setup script below and see
 * its variables (`$proc`, `$dev`, `$sys`, `$hostname`).
 */
export interface SetupSteps {
  /** Fills the tmpfs at `$dev` with null, zero, full, random, urandom and tty. */
  readonly devices: string;
  /** Puts a read-only `/sys` at `$sys`. */
  readonly sys: string;
  /** Gives the uts namespace the host name `$hostname`. */
  readonly hostname: string;
  /** Tools these lines call by name, besides mount, mkdir and ln. */
  readonly tools: readonly string[];
}

/** What the current user namespace lets a RUN process be. */
export interface NamespaceIds {
  /** Whether the process may set supplementary groups and any uid/gid (false in a single-id namespace). */
  readonly canSwitchIds: boolean;
  /** Whether gid 5 (`tty`, devpts's default owner) is mapped. */
  readonly ttyGidMapped: boolean;
}

/** One namespace backend: its name (for messages and the setup's `$0`), setup steps and ids. */
export interface NamespaceSandbox {
  readonly name: string;
  readonly steps: SetupSteps;
  readonly ids: NamespaceIds;
}

/** Absolute paths of the host tools the backends run directly. */
export interface HostTools {
  readonly unshare: string;
  readonly chroot: string;
  readonly env: string;
  readonly sh: string;
}

/** Host paths of the mount points inside the rootfs, already resolved against its symlinks. */
export interface MountTargets {
  readonly rootfs: string;
  readonly proc: string;
  readonly dev: string;
  readonly sys: string;
  /** One per `spec.binds` entry, in the same order. */
  readonly binds: readonly string[];
}

/** Written to the control channel once every mount is in place, just before the command starts. */
export const setupDoneMarker = (sandbox: NamespaceSandbox): string => `${sandbox.name}-setup-done`;

/**
 * The host shell script that runs as init of the new namespaces, before the root changes. Its
 * arguments: the resolved proc, dev and sys mount points, hostname, network, the devpts gid (empty
 * when gid 5 is not mapped), the number of binds, then per bind its source, resolved target and
 * `ro`/`rw`, then the command that enters the rootfs. Every mount lives in the private mount
 * namespace, so nothing is left in the rootfs when it goes away. Its stderr (fd 2) is the control
 * channel; the process's real stderr waits on fd 3.
 *
 * The shell stays init and runs the command as its child rather than exec'ing it: it reaps
 * orphans, reports a signal death as 128+N, and being (namespace) root for its whole life it keeps
 * the parent death signal of `unshare --kill-child` (a credential change would clear it).
 * When it exits, the kernel kills whatever the command left running in the pid namespace. The
 * command gets its stderr only inside a subshell, so the shell's own notes (such as "Killed") stay
 * on the control channel.
 */
const setupScript = (sandbox: NamespaceSandbox): string => `set -eu
proc=$1 dev=$2 sys=$3 hostname=$4 network=$5 ptsgid=$6 binds=$7
shift 7
mount -t proc -o nosuid,nodev,noexec proc "$proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=65536k tmpfs "$dev"
${sandbox.steps.devices}
mkdir -m 0755 "$dev/pts"
mount -t devpts -o "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620\${ptsgid:+,gid=$ptsgid}" devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mkdir -m 1777 "$dev/shm"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
${sandbox.steps.sys}
while [ "$binds" -gt 0 ]; do
  mount --bind "$1" "$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi
  shift 3
  binds=$((binds - 1))
done
${sandbox.steps.hostname}
if [ "$network" = none ]; then ip link set lo up; fi
echo ${setupDoneMarker(sandbox)} >&2
status=0
( exec "$@" 2>&3 3>&- ) || status=$?
exit "$status"
`;

/** The argv (tool first) that runs `spec` in fresh namespaces with the rootfs mounted at `targets`. */
export function sandboxCommand(spec: RunSpec, tools: HostTools, targets: MountTargets, sandbox: NamespaceSandbox): string[] {
  const namespaces = ['--mount', '--propagation', 'private', '--uts', '--ipc', '--pid', '--fork', '--kill-child'];
  if (spec.network === 'none') namespaces.push('--net');
  const binds = spec.binds.flatMap((bind, index) => [bind.source, targets.binds[index], bind.readonly ? 'ro' : 'rw']);
  const environment = [tools.env, '-i', '--', ...spec.env];
  const enterRoot = [tools.unshare, `--root=${targets.rootfs}`, `--wd=${spec.cwd}`];
  // Entering the rootfs with host tools only: coreutils chroot, still uid 0 and with `/` as the
  // new root, sets gid and supplementary groups (`+` makes them numeric, never looked up); env
  // replaces the environment; util-linux unshare, still holding CAP_SYS_CHROOT, changes root,
  // changes to the working directory (resolved inside the new root) and only then sets the uid,
  // which drops every capability, and execs the command (found through the new PATH). Unlike
  // `unshare --setgid`, this keeps the supplementary groups; unlike chroot into the rootfs, it can
  // set a working directory other than `/`. In a single-id namespace setgroups is denied and only
  // 0 exists, so the process keeps uid and gid 0.
  const enter = sandbox.ids.canSwitchIds
    ? [
        tools.chroot, `--userspec=+0:+${spec.user.gid}`, `--groups=${spec.user.additionalGids.map((gid) => `+${gid}`).join(',')}`, '/',
        ...environment, ...enterRoot, `--setuid=${spec.user.uid}`, '--', ...spec.args,
      ]
    : [...environment, ...enterRoot, '--', ...spec.args];
  return [
    tools.unshare, ...namespaces, '--', tools.sh, '-c', setupScript(sandbox), `${sandbox.name}-setup`,
    targets.proc, targets.dev, targets.sys, spec.hostname, spec.network, sandbox.ids.ttyGidMapped ? '5' : '',
    String(spec.binds.length), ...binds,
    ...enter,
  ];
}
