import type { RunSpec } from './backend.js';

/** Written to the control channel once every mount is in place, just before the command starts. */
export const rootlessSetupDoneMarker = 'rootless-setup-done';

/** Host device nodes bound into the container's `/dev` (a user namespace may not create nodes). */
const deviceNodes = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/**
 * The host shell script that runs as init of the new namespaces, as uid 0 of a user namespace (or
 * as real root). Unlike the chroot backend it creates no device nodes: it binds the host's over
 * empty files in a tmpfs `/dev`; and it binds the host's `/sys` (with its submounts) read-only,
 * since sysfs can only be mounted by the owner of the network namespace. Its arguments: the
 * resolved proc, dev and sys mount points, hostname, network, the devpts gid (empty when gid 5 is
 * not mapped), the number of binds, then per bind its source, resolved target and `ro`/`rw`, then
 * the command that enters the rootfs. Every mount lives in the private mount namespace, so nothing
 * is left in the rootfs when it goes away. The host name is set with hostname(1): the sysctl file
 * belongs to the initial namespace's root, so uid 0 of a user namespace may not write it. fd 2 is
 * the control channel; the process's stderr waits on fd 3. The shell stays init and runs the
 * command as its child (see chroot-setup.ts).
 */
const setupScript = `set -eu
proc=$1 dev=$2 sys=$3 hostname=$4 network=$5 ptsgid=$6 binds=$7
shift 7
mount -t proc -o nosuid,nodev,noexec proc "$proc"
mount -t tmpfs -o nosuid,noexec,mode=0755,size=65536k tmpfs "$dev"
for node in ${deviceNodes.join(' ')}; do
  : > "$dev/$node"
  mount --bind "/dev/$node" "$dev/$node"
done
mkdir -m 0755 "$dev/pts"
mount -t devpts -o "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620\${ptsgid:+,gid=$ptsgid}" devpts "$dev/pts"
ln -s pts/ptmx "$dev/ptmx"
mkdir -m 1777 "$dev/shm"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$dev/shm"
ln -s /proc/self/fd "$dev/fd"
ln -s /proc/self/fd/0 "$dev/stdin"
ln -s /proc/self/fd/1 "$dev/stdout"
ln -s /proc/self/fd/2 "$dev/stderr"
mount --rbind /sys "$sys"
mount -o remount,bind,ro "$sys"
while [ "$binds" -gt 0 ]; do
  mount --bind "$1" "$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi
  shift 3
  binds=$((binds - 1))
done
hostname "$hostname"
if [ "$network" = none ]; then ip link set lo up; fi
echo ${rootlessSetupDoneMarker} >&2
status=0
( exec "$@" 2>&3 3>&- ) || status=$?
exit "$status"
`;

/** Absolute paths of the host tools the backend runs directly. */
export interface RootlessTools {
  readonly unshare: string;
  readonly chroot: string;
  readonly env: string;
  readonly sh: string;
}

/** Host paths of the mount points inside the rootfs, already resolved against its symlinks. */
export interface RootlessTargets {
  readonly rootfs: string;
  readonly proc: string;
  readonly dev: string;
  readonly sys: string;
  /** One per `spec.binds` entry, in the same order. */
  readonly binds: readonly string[];
}

export interface RootlessIds {
  /** Whether the process may set supplementary groups and any uid/gid (false in a single-id namespace). */
  readonly canSwitchIds: boolean;
  /** Whether gid 5 (`tty`, devpts's default owner) is mapped. */
  readonly ttyGidMapped: boolean;
}

/** The argv (tool first) that runs `spec` in fresh namespaces with the rootfs mounted at `targets`. */
export function rootlessCommand(spec: RunSpec, tools: RootlessTools, targets: RootlessTargets, ids: RootlessIds): string[] {
  const namespaces = ['--mount', '--propagation', 'private', '--uts', '--ipc', '--pid', '--fork', '--kill-child'];
  if (spec.network === 'none') namespaces.push('--net');
  const binds = spec.binds.flatMap((bind, index) => [bind.source, targets.binds[index], bind.readonly ? 'ro' : 'rw']);
  const environment = [tools.env, '-i', '--', ...spec.env];
  const enterRoot = [tools.unshare, `--root=${targets.rootfs}`, `--wd=${spec.cwd}`];
  // With every id mapped, the ids are set as the chroot backend does: coreutils chroot into `/`
  // sets gid and supplementary groups (numeric), util-linux unshare changes root and directory,
  // then sets the uid. In a single-id namespace setgroups is denied and only 0 exists, so the
  // process keeps uid and gid 0.
  const enter = ids.canSwitchIds
    ? [
        tools.chroot, `--userspec=+0:+${spec.user.gid}`, `--groups=${spec.user.additionalGids.map((gid) => `+${gid}`).join(',')}`, '/',
        ...environment, ...enterRoot, `--setuid=${spec.user.uid}`, '--', ...spec.args,
      ]
    : [...environment, ...enterRoot, '--', ...spec.args];
  return [
    tools.unshare, ...namespaces, '--', tools.sh, '-c', setupScript, 'rootless-setup',
    targets.proc, targets.dev, targets.sys, spec.hostname, spec.network, ids.ttyGidMapped ? '5' : '', String(spec.binds.length), ...binds,
    ...enter,
  ];
}
