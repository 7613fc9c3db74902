import assert from 'node:assert/strict';
import { constants as osConstants } from 'node:os';
import test from 'node:test';
import { compileSeccompFilter, type ArchitecturePolicy, type SeccompAction } from '../../../../builder/isolation/launcher/seccomp-bpf.js';
import { deniedSyscalls, hostArchitecturePolicies } from '../../../../builder/isolation/launcher/seccomp-policy.js';
import { i386Syscalls } from '../../../../builder/isolation/launcher/syscall-table-i386.js';
import { x86_64Syscalls } from '../../../../builder/isolation/launcher/syscall-table-x86_64.js';

const { EPERM, ENOSYS } = osConstants.errno;
const ALLOW = 0x7fff0000;
const KILL_PROCESS = 0x80000000;
const errno = (value: number): number => 0x00050000 | value;

/**
 * Runs a classic BPF seccomp program on one system call, as the kernel does: only the
 * instructions the compiler emits (ld abs word, ja, jeq, jge, jset, ret k).
 */
function evaluate(program: Buffer, call: { arch: number; nr: number; arg0?: number }): number {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, 0);
  data.writeUInt32LE(call.arch >>> 0, 4);
  data.writeUInt32LE((call.arg0 ?? 0) >>> 0, 16);
  let accumulator = 0;
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) accumulator = data.readUInt32LE(k);
    else if (code === 0x06) return k;
    else if (code === 0x05) pc += k;
    else if (code === 0x15) pc += accumulator === k ? jt : jf;
    else if (code === 0x35) pc += accumulator >= k ? jt : jf;
    else if (code === 0x45) pc += (accumulator & k) !== 0 ? jt : jf;
    else throw new Error(`unexpected opcode ${code.toString(16)} at ${pc}`);
    pc++;
  }
  throw new Error('the program does not end');
}

const X86_64 = 0xc000003e;
const I386 = 0x40000003;

test('every x86_64 and i386 number gets its action; other numbers ENOSYS, other architectures are killed', () => {
  const policies = hostArchitecturePolicies('x64');
  const program = compileSeccompFilter(policies);
  const denied = new Set(deniedSyscalls);
  for (const [arch, table] of [[X86_64, x86_64Syscalls], [I386, i386Syscalls]] as const) {
    const names = new Map(Object.entries(table).map(([name, nr]) => [nr, name]));
    const highest = Math.max(...names.keys());
    for (let nr = 0; nr <= highest + 2; nr++) {
      const name = names.get(nr);
      if (name === 'clone' || name === 'personality') continue;
      const expected = name === undefined ? errno(ENOSYS) : name === 'clone3' ? errno(ENOSYS) : denied.has(name) ? errno(EPERM) : ALLOW;
      assert.equal(evaluate(program, { arch, nr }), expected, `${arch.toString(16)} ${nr} ${name}`);
    }
    // x32 numbers, and numbers far past the table
    assert.equal(evaluate(program, { arch, nr: 0x40000000 }), errno(ENOSYS));
    assert.equal(evaluate(program, { arch, nr: 0xffffffff }), errno(ENOSYS));
  }
  assert.equal(evaluate(program, { arch: X86_64, nr: x86_64Syscalls.mount as number }), errno(EPERM));
  assert.equal(evaluate(program, { arch: X86_64, nr: x86_64Syscalls.read as number }), ALLOW);
  assert.equal(evaluate(program, { arch: 0xc00000b7, nr: 0 }), KILL_PROCESS);
});

test('clone is refused with namespace flags only, personality allows only harmless personas', () => {
  const program = compileSeccompFilter(hostArchitecturePolicies('x64'));
  const clone = x86_64Syscalls.clone as number;
  const personality = x86_64Syscalls.personality as number;
  assert.equal(evaluate(program, { arch: X86_64, nr: clone, arg0: 0x01200011 }), ALLOW); // fork's flags
  assert.equal(evaluate(program, { arch: X86_64, nr: clone, arg0: 0x003d0f00 }), ALLOW); // a thread's
  for (const flag of [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]) {
    assert.equal(evaluate(program, { arch: X86_64, nr: clone, arg0: 0x11 | flag }), errno(EPERM), flag.toString(16));
  }
  assert.equal(evaluate(program, { arch: I386, nr: i386Syscalls.clone as number, arg0: 0x10000011 }), errno(EPERM));
  for (const persona of [0, 8, 0x20000, 0x20008, 0xffffffff]) assert.equal(evaluate(program, { arch: X86_64, nr: personality, arg0: persona }), ALLOW);
  assert.equal(evaluate(program, { arch: X86_64, nr: personality, arg0: 0x0040000 }), errno(EPERM)); // ADDR_NO_RANDOMIZE
});

test('long runs of actions compile without overflowing 8-bit jump offsets', () => {
  // alternating actions: one run per number, a search tree over 1000 leaves whose jumps span far more than 255 instructions
  const actions: SeccompAction[] = Array.from({ length: 1000 }, (_, nr) => (nr % 2 === 0 ? { kind: 'allow' } : { kind: 'errno', errno: nr % 200 }));
  const policy: ArchitecturePolicy = { auditArch: X86_64, actions, unknown: { kind: 'errno', errno: ENOSYS } };
  const program = compileSeccompFilter([policy]);
  for (const nr of [0, 1, 2, 499, 500, 998, 999, 1000]) {
    const expected = nr >= 1000 ? errno(ENOSYS) : nr % 2 === 0 ? ALLOW : errno(nr % 200);
    assert.equal(evaluate(program, { arch: X86_64, nr }), expected, String(nr));
  }
});
