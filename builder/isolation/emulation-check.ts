import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SourceError, TsbuildError } from '../../layers/errors.js';
import { formatPlatform } from '../../layers/platform.js';
import type { Platform } from '../../layers/types.js';
import type { BuildPlan } from '../model/plan.js';

/** How binaries of an architecture identify themselves in their ELF header, and qemu's name for it. */
interface ElfMachine {
  readonly qemu: string;
  readonly bits: 32 | 64;
  readonly bigEndian: boolean;
  readonly machine: number;
}

const machines: Readonly<Record<string, ElfMachine>> = {
  amd64: { qemu: 'x86_64', bits: 64, bigEndian: false, machine: 0x3e },
  '386': { qemu: 'i386', bits: 32, bigEndian: false, machine: 0x03 },
  arm64: { qemu: 'aarch64', bits: 64, bigEndian: false, machine: 0xb7 },
  arm: { qemu: 'arm', bits: 32, bigEndian: false, machine: 0x28 },
  ppc64le: { qemu: 'ppc64le', bits: 64, bigEndian: false, machine: 0x15 },
  ppc64: { qemu: 'ppc64', bits: 64, bigEndian: true, machine: 0x15 },
  s390x: { qemu: 's390x', bits: 64, bigEndian: true, machine: 0x16 },
  riscv64: { qemu: 'riscv64', bits: 64, bigEndian: false, machine: 0xf3 },
  mips64le: { qemu: 'mips64el', bits: 64, bigEndian: false, machine: 0x08 },
  mips64: { qemu: 'mips64', bits: 64, bigEndian: true, machine: 0x08 },
  mipsle: { qemu: 'mipsel', bits: 32, bigEndian: false, machine: 0x08 },
  mips: { qemu: 'mips', bits: 32, bigEndian: true, machine: 0x08 },
  loong64: { qemu: 'loongarch64', bits: 64, bigEndian: false, machine: 0x102 },
};

/** Architectures a host runs without an emulator besides its own. */
const nativeExtras: Readonly<Record<string, readonly string[]>> = { amd64: ['386'], arm64: ['arm'] };

export const binfmtDir = '/proc/sys/fs/binfmt_misc';

/**
 * Fails before any work when a RUN step targets an architecture this host cannot execute: no
 * binfmt_misc handler (qemu-user-static) is registered for it. Where binfmt_misc is not mounted
 * (as in most containers) the handlers cannot be listed, so a probe binary is started instead.
 */
export function checkEmulation(plan: BuildPlan, host: Platform, dir = binfmtDir): void {
  const checked = new Set<string>();
  for (const stage of plan.platforms.flatMap((p) => p.stages)) {
    const run = stage.steps.find((step) => step.kind === 'run');
    const arch = stage.platform.architecture;
    if (run === undefined || checked.has(arch) || arch === host.architecture || nativeExtras[host.architecture]?.includes(arch)) continue;
    checked.add(arch);
    const machine = machines[arch];
    if (machine === undefined || canExecute(machine, dir)) continue;
    const cause = new TsbuildError('ISOLATION_UNAVAILABLE', missingEmulatorMessage(stage.platform, host, machine));
    throw new SourceError(run.location.file, run.location.startLine, cause.message, { cause });
  }
}

function missingEmulatorMessage(target: Platform, host: Platform, machine: ElfMachine): string {
  return (
    `RUN for ${formatPlatform(target)} cannot run on this ${formatPlatform(host)} host: no binfmt_misc handler executes ${machine.qemu} binaries ` +
    `(they would fail with "exec format error"); install qemu-user-static (apt-get install qemu-user-static binfmt-support) ` +
    `and register it (update-binfmts --enable qemu-${machine.qemu}, or docker run --privileged --rm tonistiigi/binfmt --install ${target.architecture})`
  );
}

function canExecute(machine: ElfMachine, dir: string): boolean {
  const entries = listHandlers(dir);
  return entries === undefined ? probeExecutes(machine) : entries.some((magic) => matchesMachine(magic, machine));
}

/** The magic bytes of every enabled handler, or undefined when binfmt_misc is not mounted at `dir`. */
function listHandlers(dir: string): Buffer[] | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (!names.includes('status')) return undefined;
  if (readFileSync(path.join(dir, 'status'), 'utf8').trim() !== 'enabled') return [];
  return names
    .filter((name) => name !== 'status' && name !== 'register')
    .flatMap((name) => {
      const text = readFileSync(path.join(dir, name), 'utf8');
      const offset = /^offset (\d+)$/m.exec(text)?.[1];
      const magic = /^magic ([0-9a-f]+)$/m.exec(text)?.[1];
      return text.startsWith('enabled') && offset === '0' && magic !== undefined ? [Buffer.from(magic, 'hex')] : [];
    });
}

/** Whether an ELF-matching handler's magic names this class, byte order and machine. */
function matchesMachine(magic: Buffer, machine: ElfMachine): boolean {
  if (magic.length < 20 || magic.toString('latin1', 0, 4) !== '\x7fELF') return false;
  const read = machine.bigEndian ? magic.readUInt16BE(18) : magic.readUInt16LE(18);
  return magic[4] === (machine.bits === 64 ? 2 : 1) && magic[5] === (machine.bigEndian ? 2 : 1) && read === machine.machine;
}

/**
 * Starts a bare ELF header of the architecture. Without a handler the kernel refuses it (ENOEXEC)
 * and the C library hands it to /bin/sh instead, which cannot find the command (exit 127); an
 * emulator starts and fails to load it with another status. When the probe cannot even be
 * started (a noexec temp directory), nothing is known and the build goes on.
 */
function probeExecutes(machine: ElfMachine): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsbuild-binfmt-probe-'));
  try {
    const file = path.join(dir, 'probe');
    writeFileSync(file, elfHeader(machine), { mode: 0o700 });
    const result = spawnSync(file, [], { stdio: 'ignore', timeout: 10_000 });
    const refused = (result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOEXEC' || (result.error === undefined && result.status === 127);
    return !refused;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function elfHeader(machine: ElfMachine): Buffer {
  const header = Buffer.alloc(64);
  header.write('\x7fELF', 0, 'latin1');
  header[4] = machine.bits === 64 ? 2 : 1;
  header[5] = machine.bigEndian ? 2 : 1;
  header[6] = 1;
  const write16 = (value: number, at: number): number => (machine.bigEndian ? header.writeUInt16BE(value, at) : header.writeUInt16LE(value, at));
  write16(2, 16);
  write16(machine.machine, 18);
  return header;
}
