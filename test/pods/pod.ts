/**
 * A simulated Kubernetes pod: a runc container with the container runtime's default confinement,
 * started from a generated config.json. CAP_SYS_ADMIN is dropped from every capability set (the
 * others are Docker's and containerd's defaults), a seccomp profile blocks what the runtime default
 * blocks for a container without CAP_SYS_ADMIN (mount, unshare, setns, clone with namespace flags,
 * pivot_root, keyctl, ptrace, bpf, ...), /proc is masked as runtimes mask it, and
 * `no_new_privs` is set. The pod shares the host's network namespace, so it reaches the test
 * registry on 127.0.0.1.
 *
 * The pod's root filesystem is the builder image: the Debian test base (which has no `attr`
 * package) plus this node binary and this repository's build at /opt/tsbuild, the host's runc,
 * and a user `builder` (uid 1000). It is writable and thrown away after the test.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, copyFile, mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { debianBookwormImage } from '../support/debian-image.js';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);

/** Who the pod's process is: root; uid 1000; or uid 1000 with user namespaces allowed (seccomp lets them through). */
export type PodUser = 'root' | 'uid1000' | 'uid1000-userns';

/** The runtime default capabilities (Docker's and containerd's): chown and change ids, never mount or unshare. */
export const defaultCapabilities = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'].map((c) => `CAP_${c}`);

/** Calls the runtime default profile refuses a container without CAP_SYS_ADMIN (and a few that need other capabilities it lacks). */
const blockedCalls = [
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'delete_module', 'finit_module', 'fsconfig', 'fsmount', 'fsopen',
  'fspick', 'init_module', 'kcmp', 'kexec_file_load', 'kexec_load', 'keyctl', 'lookup_dcookie', 'mount', 'mount_setattr',
  'move_mount', 'name_to_handle_at', 'open_by_handle_at', 'open_tree', 'perf_event_open', 'pivot_root', 'process_vm_readv',
  'process_vm_writev', 'ptrace', 'quotactl', 'reboot', 'request_key', 'setns', 'settimeofday', 'swapoff', 'swapon', 'syslog',
  'umount2', 'unshare', 'userfaultfd',
];

/** What a pod that allows user namespaces (seccomp Unconfined, or `hostUsers: false`) lets through; the kernel still decides. */
const userNamespaceCalls = new Set(['mount', 'umount2', 'unshare', 'setns', 'pivot_root']);

/** CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: `clone` with any of them is refused. */
const cloneNamespaceFlags = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

const EPERM = 1;
const ENOSYS = 38;

/** A runc seccomp profile equivalent to the runtime default for a container without CAP_SYS_ADMIN. */
export function seccompProfile(allowUserNamespaces: boolean): Record<string, unknown> {
  const blocked = blockedCalls.filter((name) => !(allowUserNamespaces && userNamespaceCalls.has(name)));
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: blocked, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
      // As the runtime default: clone3's flags cannot be inspected, so the C library falls back to clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      ...(allowUserNamespaces
        ? []
        : cloneNamespaceFlags.map((flag) => ({
            names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM,
            args: [{ index: 0, value: flag, valueTwo: flag, op: 'SCMP_CMP_MASKED_EQ' }],
          }))),
    ],
  };
}

export interface Bind {
  readonly source: string;
  readonly destination: string;
  readonly readonly: boolean;
}

export interface Pod {
  readonly bundle: string;
  readonly rootfs: string;
}

/**
 * A bundle whose rootfs is the builder image described above. With `newuidmap`, the host's
 * newuidmap/newgidmap (setuid) are copied in and `builder` gets subordinate ids, so a rootless
 * build tries them first; `no_new_privs` then makes them fail, as in a pod.
 */
export async function makePod(work: string, name: string, options: { newuidmap?: boolean } = {}): Promise<Pod> {
  const base = await debianBookwormImage();
  const { bundle, rootfs } = await podFromImage(work, name, base.layoutDir, base.tag);
  await copyFile(process.execPath, path.join(rootfs, 'usr/local/bin/node'));
  await chmod(path.join(rootfs, 'usr/local/bin/node'), 0o755);
  const install = path.join(rootfs, 'opt/tsbuild');
  await mkdir(install, { recursive: true });
  const sources = await Promise.all(['bin', 'dist', 'node_modules', 'package.json'].map((entry) => realpath(path.join(repoRoot(), entry))));
  await run('cp', ['-a', '--', ...sources, install]);
  await appendFile(path.join(rootfs, 'etc/passwd'), 'builder:x:1000:1000:builder:/home/builder:/bin/sh\n');
  await appendFile(path.join(rootfs, 'etc/group'), 'builder:x:1000:\n');
  await mkdir(path.join(rootfs, 'home/builder'), { recursive: true });
  await chown(path.join(rootfs, 'home/builder'), 1000, 1000);
  // As in a builder image that ships an OCI runtime, which cannot work without CAP_SYS_ADMIN.
  await copyFile('/usr/sbin/runc', path.join(rootfs, 'usr/sbin/runc'));
  await chmod(path.join(rootfs, 'usr/sbin/runc'), 0o755);
  if (options.newuidmap) {
    for (const tool of ['newuidmap', 'newgidmap']) {
      await copyFile(`/usr/bin/${tool}`, path.join(rootfs, 'usr/bin', tool));
      await chmod(path.join(rootfs, 'usr/bin', tool), 0o4755);
    }
    await writeFile(path.join(rootfs, 'etc/subuid'), 'builder:100000:65536\n');
    await writeFile(path.join(rootfs, 'etc/subgid'), 'builder:100000:65536\n');
  }
  return { bundle, rootfs };
}

export interface PodSettings {
  /**
   * Kubernetes' `securityContext.procMount`: `Default` masks parts of /proc as runtimes do, which
   * keeps a user namespace from mounting a new /proc; `Unmasked` (allowed with `hostUsers: false`)
   * leaves it whole.
   */
  readonly procMount?: 'Default' | 'Unmasked';
  /** Variables besides PATH and HOME (an image's ENV), `KEY=value`; later ones win. */
  readonly env?: readonly string[];
  /** A command that starts runc on the host, such as GNU time and its options, which then measures the whole pod. */
  readonly runtimePrefix?: readonly string[];
}

/** A bundle whose rootfs is the image `tag` of the OCI layout `layoutDir`, as it is. */
export async function podFromImage(work: string, name: string, layoutDir: string, tag: string): Promise<Pod> {
  const bundle = path.join(work, name);
  const rootfs = path.join(bundle, 'rootfs');
  await mkdir(bundle, { recursive: true });
  await run('umoci', ['raw', 'unpack', '--image', `${layoutDir}:${tag}`, rootfs]);
  return { bundle, rootfs };
}

/** Runs `args` as pid 1 of the pod, as `user`, with `binds`; resolves with its exit code and output. */
export async function runPod(pod: Pod, user: PodUser, args: readonly string[], binds: readonly Bind[], settings: PodSettings = {}): Promise<{ code: number | null; output: string }> {
  await run('runc', ['spec', '--bundle', pod.bundle]);
  const configPath = path.join(pod.bundle, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as {
    process: { args: string[]; env: string[]; terminal: boolean; cwd: string; user: { uid: number; gid: number }; capabilities: Record<string, string[]>; noNewPrivileges: boolean };
    root: { readonly: boolean };
    hostname: string;
    mounts: { destination: string; type: string; source: string; options: string[] }[];
    linux: { namespaces: { type: string }[]; seccomp?: unknown; maskedPaths: string[]; readonlyPaths: string[] };
  };
  const root = user === 'root';
  config.process.terminal = false;
  config.process.cwd = root ? '/' : '/home/builder';
  config.process.args = [...args];
  config.process.user = root ? { uid: 0, gid: 0 } : { uid: 1000, gid: 1000 };
  config.process.env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOME=${root ? '/root' : '/home/builder'}`, ...(settings.env ?? [])];
  // As the runtime sets them: an unprivileged process keeps only the bounding set.
  config.process.capabilities = root
    ? { bounding: defaultCapabilities, effective: defaultCapabilities, permitted: defaultCapabilities }
    : { bounding: defaultCapabilities, effective: [], permitted: [] };
  config.process.noNewPrivileges = true;
  config.root.readonly = false;
  config.hostname = 'builder-pod';
  config.linux.namespaces = config.linux.namespaces.filter((ns) => ns.type !== 'network');
  config.linux.seccomp = seccompProfile(user === 'uid1000-userns');
  if (settings.procMount === 'Unmasked') {
    config.linux.maskedPaths = [];
    config.linux.readonlyPaths = [];
  }
  for (const bind of binds) config.mounts.push({ destination: bind.destination, type: 'bind', source: bind.source, options: ['rbind', bind.readonly ? 'ro' : 'rw'] });
  await writeFile(configPath, JSON.stringify(config));
  const runtime = [...(settings.runtimePrefix ?? []), 'runc', '--root', path.join(pod.bundle, 'state'), 'run', '--bundle', pod.bundle, `tsbuild-pod-${randomBytes(6).toString('hex')}`];
  const child = spawn(runtime[0]!, runtime.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, output };
}

/** The tsbuild command line in the pod. */
export function tsbuildArgs(...args: string[]): string[] {
  return ['/opt/tsbuild/bin/tsbuild', ...args];
}
