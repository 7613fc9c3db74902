/**
 * The RUN step seccomp policy (launcher/seccomp-policy.ts) in runtime-spec form, so steps under an
 * OCI runtime get the same filter as chroot and rootless steps. The runtime compiles it with
 * libseccomp and skips names its library does not know yet.
 */
import { constants as osConstants } from 'node:os';
import { allowedOutright, CLONE_NEW_NAMESPACES, harmlessPersonas, hostSyscallArchitectures } from './launcher/seccomp-policy.js';

export interface OciSeccompArg {
  readonly index: number;
  readonly value: number;
  readonly valueTwo?: number;
  readonly op: 'SCMP_CMP_EQ' | 'SCMP_CMP_MASKED_EQ';
}

export interface OciSeccompRule {
  readonly names: readonly string[];
  readonly action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  readonly errnoRet?: number;
  readonly args?: readonly OciSeccompArg[];
}

export interface OciSeccomp {
  readonly defaultAction: 'SCMP_ACT_ERRNO';
  readonly defaultErrnoRet: number;
  readonly architectures: readonly string[];
  readonly syscalls: readonly OciSeccompRule[];
}

/**
 * Everything not allowed fails with EPERM (denied calls, and `clone` with a namespace flag, which
 * no rule matches); `clone3` fails with ENOSYS so the C library falls back to `clone`.
 */
export function ociSeccomp(arch: string = process.arch): OciSeccomp {
  let policy = policies.get(arch);
  if (!policy) policies.set(arch, (policy = buildPolicy(arch)));
  return policy;
}

/** Built once per architecture: every RUN step's config carries the same policy. */
const policies = new Map<string, OciSeccomp>();

function buildPolicy(arch: string): OciSeccomp {
  const architectures = hostSyscallArchitectures(arch);
  const names = new Set(architectures.flatMap(({ table }) => Object.keys(table)));
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: osConstants.errno.EPERM,
    architectures: architectures.map(({ scmpArch }) => scmpArch),
    syscalls: [
      { names: [...names].filter(allowedOutright).sort(), action: 'SCMP_ACT_ALLOW' },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NEW_NAMESPACES, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: osConstants.errno.ENOSYS },
      ...harmlessPersonas.map((value): OciSeccompRule => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
    ],
  };
}
