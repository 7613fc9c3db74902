/**
 * Compiles a seccomp policy (an action for every system call number of each architecture) to a
 * classic BPF program for seccomp(SECCOMP_SET_MODE_FILTER). The program checks the architecture,
 * then finds the number's action by a binary search over runs of numbers with the same action.
 * Numbers an architecture's table does not know get the policy's `unknown` action, so system calls
 * newer than the table (and x32's, >= 0x40000000, on x86_64) are refused.
 */

/** What the filter does with one system call. */
export type SeccompAction =
  | { readonly kind: 'allow' }
  | { readonly kind: 'errno'; readonly errno: number }
  /** Fails with `errno` when the first argument has any bit of `mask` set, else allows. */
  | { readonly kind: 'deny-arg0-bits'; readonly mask: number; readonly errno: number }
  /** Allows only these values of the first argument (its low 32 bits), else fails with `errno`. */
  | { readonly kind: 'allow-arg0-values'; readonly values: readonly number[]; readonly errno: number };

export interface ArchitecturePolicy {
  /** AUDIT_ARCH_* value of seccomp_data.arch. */
  readonly auditArch: number;
  /** The action of each number from 0 to the highest the architecture's table knows. */
  readonly actions: readonly SeccompAction[];
  /** For numbers past the table. */
  readonly unknown: SeccompAction;
}

/** One sock_filter instruction. */
interface Instruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

const BPF_LD_W_ABS = 0x20;
const BPF_JMP_JA = 0x05;
const BPF_JMP_JEQ_K = 0x15;
const BPF_JMP_JGE_K = 0x35;
const BPF_JMP_JSET_K = 0x45;
const BPF_RET_K = 0x06;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_ALLOW = 0x7fff0000;

/** Offsets in struct seccomp_data. */
const NR_OFFSET = 0;
const ARCH_OFFSET = 4;
/** Low 32 bits of args[0] (little-endian). */
const ARG0_OFFSET = 16;

const op = (code: number, k = 0, jt = 0, jf = 0): Instruction => ({ code, jt, jf, k });
const ret = (value: number): Instruction => op(BPF_RET_K, value);
const errnoReturn = (errno: number): Instruction => ret(SECCOMP_RET_ERRNO | errno);

/** The instructions that end the program with `action`; they may reload the accumulator. */
function actionCode(action: SeccompAction): Instruction[] {
  switch (action.kind) {
    case 'allow':
      return [ret(SECCOMP_RET_ALLOW)];
    case 'errno':
      return [errnoReturn(action.errno)];
    case 'deny-arg0-bits':
      return [op(BPF_LD_W_ABS, ARG0_OFFSET), op(BPF_JMP_JSET_K, action.mask, 1, 0), ret(SECCOMP_RET_ALLOW), errnoReturn(action.errno)];
    case 'allow-arg0-values': {
      const count = action.values.length;
      // each jeq jumps to the final allow past the remaining jeqs and the errno return
      const tests = action.values.map((value, index) => op(BPF_JMP_JEQ_K, value >>> 0, count - index, 0));
      return [op(BPF_LD_W_ABS, ARG0_OFFSET), ...tests, errnoReturn(action.errno), ret(SECCOMP_RET_ALLOW)];
    }
  }
}

interface Run {
  readonly start: number;
  readonly action: SeccompAction;
}

/** Consecutive numbers with equal actions merged, then the unknown rest. */
function runsOf(policy: ArchitecturePolicy): Run[] {
  const runs: Run[] = [];
  let lastKey = '';
  policy.actions.forEach((action, number) => {
    const key = JSON.stringify(action);
    if (key !== lastKey) runs.push({ start: number, action });
    lastKey = key;
  });
  if (JSON.stringify(policy.unknown) !== lastKey) runs.push({ start: policy.actions.length, action: policy.unknown });
  return runs;
}

/**
 * Code that, with the number in the accumulator, ends with the action of the run it falls in:
 * `jge` on the middle run's start either skips the `ja` into the upper half or takes it to the
 * lower half. `ja` has a 32-bit offset, so no 8-bit jump offset ever overflows.
 */
function searchCode(runs: readonly Run[]): Instruction[] {
  if (runs.length === 1) return actionCode((runs[0] as Run).action);
  const middle = Math.floor(runs.length / 2);
  const upper = searchCode(runs.slice(middle));
  const lower = searchCode(runs.slice(0, middle));
  return [op(BPF_JMP_JGE_K, (runs[middle] as Run).start, 1, 0), op(BPF_JMP_JA, upper.length), ...upper, ...lower];
}

function encode(program: readonly Instruction[]): Buffer {
  const buffer = Buffer.alloc(program.length * 8);
  program.forEach((instruction, index) => {
    buffer.writeUInt16LE(instruction.code, index * 8);
    buffer.writeUInt8(instruction.jt, index * 8 + 2);
    buffer.writeUInt8(instruction.jf, index * 8 + 3);
    buffer.writeUInt32LE(instruction.k >>> 0, index * 8 + 4);
  });
  return buffer;
}

/**
 * The filter for `architectures` as sock_filter instructions (8 bytes each); a system call from
 * any other architecture kills the process.
 */
export function compileSeccompFilter(architectures: readonly ArchitecturePolicy[]): Buffer {
  const sections = architectures.map((arch) => [op(BPF_LD_W_ABS, NR_OFFSET), ...searchCode(runsOf(arch))]);
  // per architecture: jeq arch (fall through to its ja) else skip the ja; then the kill
  const dispatch: Instruction[] = [op(BPF_LD_W_ABS, ARCH_OFFSET)];
  let sectionStart = 1 + 2 * architectures.length + 1;
  architectures.forEach((arch, index) => {
    const jaIndex = dispatch.length + 1;
    dispatch.push(op(BPF_JMP_JEQ_K, arch.auditArch >>> 0, 0, 1), op(BPF_JMP_JA, sectionStart - (jaIndex + 1)));
    sectionStart += (sections[index] as Instruction[]).length;
  });
  dispatch.push(ret(SECCOMP_RET_KILL_PROCESS));
  const program = [...dispatch, ...sections.flat()];
  if (program.length > 4096) throw new Error(`seccomp filter too long (${program.length} instructions)`);
  return encode(program);
}
