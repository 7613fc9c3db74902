import type { BindMount, RunSpec } from './backend.js';
import { ociSeccomp, type OciSeccomp } from './oci-seccomp.js';

/** The parts of the OCI runtime specification's `config.json` that tsbuild writes. */
export interface OciRuntimeConfig {
  readonly ociVersion: string;
  readonly process: OciProcess;
  readonly root: { readonly path: string; readonly readonly: boolean };
  readonly hostname: string;
  readonly mounts: readonly OciMount[];
  readonly linux: OciLinux;
}

export interface OciProcess {
  readonly terminal: boolean;
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids: readonly number[] };
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  readonly capabilities: OciCapabilities;
  readonly rlimits: readonly { readonly type: string; readonly hard: number; readonly soft: number }[];
  readonly noNewPrivileges: boolean;
}

export interface OciCapabilities {
  readonly bounding: readonly string[];
  readonly effective: readonly string[];
  readonly permitted: readonly string[];
  readonly inheritable: readonly string[];
  readonly ambient: readonly string[];
}

export interface OciMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

export interface OciDevice {
  readonly path: string;
  readonly type: 'c';
  readonly major: number;
  readonly minor: number;
  readonly fileMode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface OciDeviceRule {
  readonly allow: boolean;
  readonly type?: 'a' | 'c' | 'b';
  readonly major?: number;
  readonly minor?: number;
  readonly access: string;
}

/** One `linux.uidMappings`/`gidMappings` entry: `size` ids from `containerID` in the container are those from `hostID` in the runtime's namespace. */
export interface OciIdMapping {
  readonly containerID: number;
  readonly hostID: number;
  readonly size: number;
}

/** The id mappings of a user namespace the runtime creates for the container. */
export interface OciUserNamespace {
  readonly uidMappings: readonly OciIdMapping[];
  readonly gidMappings: readonly OciIdMapping[];
}

export interface OciLinux {
  readonly namespaces: readonly { readonly type: string }[];
  readonly uidMappings?: readonly OciIdMapping[];
  readonly gidMappings?: readonly OciIdMapping[];
  readonly devices: readonly OciDevice[];
  /** Only the device allow-list: no CPU, memory or pids limits. Absent in a user namespace, where no cgroup may be touched. */
  readonly resources?: { readonly devices: readonly OciDeviceRule[] };
  readonly maskedPaths: readonly string[];
  readonly readonlyPaths: readonly string[];
  readonly seccomp: OciSeccomp;
}

/** The capabilities Docker grants a container's root user by default. */
export const defaultCapabilities: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** The character devices of a minimal `/dev`, as Docker creates them. */
export const defaultDevices: readonly OciDevice[] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
].map(([name, major, minor]) => ({
  path: `/dev/${name as string}`, type: 'c' as const, major: major as number, minor: minor as number,
  fileMode: 0o666, uid: 0, gid: 0,
}));

/** Kernel interfaces hidden from the process, as Docker does. */
const maskedPaths = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

/** Kernel interfaces the process may read but not change, as Docker does. */
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const procMount: OciMount = { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] };
const devMount: OciMount = { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] };
const devptsOptions = ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'];
const shmMount: OciMount = { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] };
const mqueueMount: OciMount = { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] };
const sysfsMount: OciMount = { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] };
/**
 * The host's `/sys` with its submounts, read-only: sysfs can only be mounted by the owner of the
 * network namespace. The flags the host mount has are repeated, since a user namespace may not
 * drop them in the read-only remount.
 */
const sysBindMount: OciMount = { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'ro'] };

/**
 * The pseudo file systems every process gets; their mount points all live in the `/dev` tmpfs or
 * exist in the rootfs. In a user namespace devpts leaves out `gid=5` when gid 5 (`tty`) is not
 * mapped, and `/sys` is the host's unless the container has its own network namespace.
 */
function systemMounts(network: RunSpec['network'], userNamespace: OciUserNamespace | undefined): OciMount[] {
  const ttyGid = userNamespace === undefined || mapsId(userNamespace.gidMappings, 5);
  const ownNetwork = network === 'none';
  return [
    procMount,
    devMount,
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: [...devptsOptions, ...(ttyGid ? ['gid=5'] : [])] },
    shmMount,
    mqueueMount,
    userNamespace === undefined || ownNetwork ? sysfsMount : sysBindMount,
  ];
}

/** Whether container id `id` is in one of `mappings`. */
export function mapsId(mappings: readonly OciIdMapping[], id: number): boolean {
  return mappings.some((mapping) => id >= mapping.containerID && id < mapping.containerID + mapping.size);
}

/**
 * The identity mappings over every id a `/proc/PID/uid_map` (or `gid_map`) text maps: the ids the
 * current namespace has, each kept as itself in the container's nested namespace.
 */
export function identityMappings(idMapText: string): OciIdMapping[] {
  const mappings: OciIdMapping[] = [];
  for (const line of idMapText.split('\n')) {
    const fields = line.trim().split(/\s+/).map(Number);
    const [inner, , size] = fields;
    if (fields.length !== 3 || !fields.every(Number.isInteger) || inner === undefined || size === undefined) continue;
    mappings.push({ containerID: inner, hostID: inner, size });
  }
  return mappings.sort((a, b) => a.containerID - b.containerID);
}

/** Deny every device, then allow the minimal `/dev` plus pseudo terminals. */
const deviceRules: readonly OciDeviceRule[] = [
  { allow: false, access: 'rwm' },
  ...defaultDevices.map((device) => ({ allow: true, type: device.type, major: device.major, minor: device.minor, access: 'rwm' })),
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
];

/** A bind mount plus mount flags it must carry, such as those a user namespace may not clear on its source. */
export interface OciBindMount extends BindMount {
  readonly flags?: readonly string[];
}

export type OciConfigInput = Pick<RunSpec, 'rootfs' | 'args' | 'env' | 'cwd' | 'user' | 'hostname' | 'network'> & { readonly binds: readonly OciBindMount[] };

/**
 * The runtime-spec `config.json` for one RUN step: Docker's defaults for capabilities, masked paths
 * and `/dev`, the seccomp policy chroot and rootless steps get too, a writable root at `spec.rootfs`, the binds, and a network namespace only for
 * `network: none` (otherwise the host's network is shared). `nofile` is the RLIMIT_NOFILE soft and
 * hard limit (Docker gives 1048576; a runtime without CAP_SYS_RESOURCE cannot raise it that far).
 *
 * With `userNamespace` (a runtime running as uid 0 of a user namespace, i.e. rootless) the
 * container gets a user namespace of its own with those mappings, no cgroup settings, and the
 * mounts a user namespace allows (see systemMounts).
 */
export function ociConfig(spec: OciConfigInput, nofile: number, userNamespace?: OciUserNamespace): OciRuntimeConfig {
  const isRoot = spec.user.uid === 0;
  const granted = isRoot ? defaultCapabilities : [];
  const namespaces = ['pid', 'ipc', 'uts', 'mount', ...(spec.network === 'none' ? ['network'] : []), ...(userNamespace ? ['user'] : [])];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: [...spec.user.additionalGids] },
      args: [...spec.args],
      env: [...spec.env],
      cwd: spec.cwd,
      capabilities: { bounding: defaultCapabilities, effective: granted, permitted: granted, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: false,
    },
    root: { path: spec.rootfs, readonly: false },
    hostname: spec.hostname,
    mounts: [
      ...systemMounts(spec.network, userNamespace),
      ...spec.binds.map((bind) => ({
        destination: bind.destination,
        type: 'bind',
        source: bind.source,
        options: ['rbind', 'rprivate', ...(bind.flags ?? []), ...(bind.readonly ? ['ro'] : [])],
      })),
    ],
    linux: {
      namespaces: namespaces.map((type) => ({ type })),
      ...(userNamespace ? { uidMappings: userNamespace.uidMappings, gidMappings: userNamespace.gidMappings } : { resources: { devices: deviceRules } }),
      devices: defaultDevices,
      maskedPaths,
      readonlyPaths,
      seccomp: ociSeccomp(),
    },
  };
}
