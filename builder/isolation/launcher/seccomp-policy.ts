/**
 * Our seccomp policy for RUN steps, modelled on what container runtimes block by default: system
 * calls that reach kernel state shared with the host (modules, clocks, keyrings, swap, reboot),
 * inspect or control other processes (ptrace, process_vm_*), or change mounts and namespaces fail
 * with EPERM; everything else the architecture's table knows is allowed, and numbers it does not
 * know fail with ENOSYS.
 */
import { constants as osConstants } from 'node:os';
import { compileSeccompFilter, type ArchitecturePolicy, type SeccompAction } from './seccomp-bpf.js';
import { aarch64Syscalls } from './syscall-table-aarch64.js';
import { i386Syscalls } from './syscall-table-i386.js';
import { x86_64Syscalls } from './syscall-table-x86_64.js';

const { EPERM, ENOSYS } = osConstants.errno;

/** Denied outright (names missing from an architecture's table are skipped there). */
export const deniedSyscalls: readonly string[] = [
  'acct', 'add_key', 'bpf', 'clock_adjtime', 'clock_settime', 'create_module', 'delete_module', 'finit_module',
  'get_kernel_syms', 'get_mempolicy', 'init_module', 'ioperm', 'iopl', 'kcmp', 'kexec_file_load', 'kexec_load',
  'keyctl', 'lookup_dcookie', 'mbind', 'mount', 'mount_setattr', 'move_mount', 'open_tree', 'fsopen', 'fsconfig',
  'fsmount', 'fspick', 'move_pages', 'name_to_handle_at', 'nfsservctl', 'open_by_handle_at', 'perf_event_open',
  'pivot_root', 'process_vm_readv', 'process_vm_writev', 'ptrace', 'query_module', 'quotactl', 'reboot',
  'request_key', 'set_mempolicy', 'setns', 'settimeofday', 'stime', 'swapon', 'swapoff', 'sysfs', '_sysctl',
  'umount', 'umount2', 'unshare', 'uselib', 'userfaultfd', 'ustat', 'vm86', 'vm86old',
];

/** clone flags that make new namespaces. */
export const CLONE_NEW_NAMESPACES = 0x00020000 /* NEWNS */ | 0x02000000 /* NEWCGROUP */ | 0x04000000 /* NEWUTS */ |
  0x08000000 /* NEWIPC */ | 0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000; /* NEWNET */

/** personality(2) values that change nothing security-relevant: PER_LINUX, PER_LINUX32, UNAME26 variants, query. */
export const harmlessPersonas = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const special: Readonly<Record<string, SeccompAction>> = {
  clone: { kind: 'deny-arg0-bits', mask: CLONE_NEW_NAMESPACES, errno: EPERM },
  // its flags sit in memory seccomp cannot read; ENOSYS makes the C library fall back to clone
  clone3: { kind: 'errno', errno: ENOSYS },
  personality: { kind: 'allow-arg0-values', values: harmlessPersonas, errno: EPERM },
};

const allow: SeccompAction = { kind: 'allow' };
const deny: SeccompAction = { kind: 'errno', errno: EPERM };
const unknown: SeccompAction = { kind: 'errno', errno: ENOSYS };
const denied = new Set(deniedSyscalls);

function architecturePolicy(auditArch: number, table: Readonly<Record<string, number>>): ArchitecturePolicy {
  const names = new Map<number, string>(Object.entries(table).map(([name, number]) => [number, name]));
  const highest = Math.max(...names.keys());
  const actions = Array.from({ length: highest + 1 }, (_, number): SeccompAction => {
    const name = names.get(number);
    if (name === undefined) return unknown;
    return special[name] ?? (denied.has(name) ? deny : allow);
  });
  return { auditArch, actions, unknown };
}

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const AUDIT_ARCH_AARCH64 = 0xc00000b7;

/** One system call table a process on this machine can call the kernel with. */
export interface SyscallArchitecture {
  readonly auditArch: number;
  /** libseccomp's name for it, as runtime-spec configs write it. */
  readonly scmpArch: string;
  readonly table: Readonly<Record<string, number>>;
}

/** The system call tables of this machine's architecture (x86_64 processes may also use i386's). */
export function hostSyscallArchitectures(arch: string = process.arch): SyscallArchitecture[] {
  if (arch === 'x64') {
    return [
      { auditArch: AUDIT_ARCH_X86_64, scmpArch: 'SCMP_ARCH_X86_64', table: x86_64Syscalls },
      { auditArch: AUDIT_ARCH_I386, scmpArch: 'SCMP_ARCH_X86', table: i386Syscalls },
    ];
  }
  if (arch === 'arm64') return [{ auditArch: AUDIT_ARCH_AARCH64, scmpArch: 'SCMP_ARCH_AARCH64', table: aarch64Syscalls }];
  throw new Error(`no seccomp policy for the ${arch} architecture`);
}

/** The policies for the architectures a process on this machine can call the kernel with. */
export function hostArchitecturePolicies(arch: string = process.arch): ArchitecturePolicy[] {
  return hostSyscallArchitectures(arch).map(({ auditArch, table }) => architecturePolicy(auditArch, table));
}

/** Whether the policy allows `name` without looking at its arguments. */
export function allowedOutright(name: string): boolean {
  return !denied.has(name) && special[name] === undefined;
}

/** The compiled filter for this machine. */
export function stepSeccompFilter(): Buffer {
  return compileSeccompFilter(hostArchitecturePolicies());
}
