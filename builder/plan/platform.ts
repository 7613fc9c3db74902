import { TsbuildError } from '../../layers/errors.js';
import { formatPlatform } from '../../layers/platform.js';
import type { Platform } from '../../layers/types.js';

const nodeArchToOci: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: 'amd64' },
  arm64: { architecture: 'arm64' },
  arm: { architecture: 'arm', variant: 'v7' },
  ia32: { architecture: '386' },
  ppc64: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
};

/** The platform of the machine running the build, in OCI terms. */
export function hostPlatform(): Platform {
  const arch = nodeArchToOci[process.arch];
  if (!arch) throw new TsbuildError('PLATFORM', `unsupported host architecture: ${process.arch}`);
  return { os: process.platform === 'win32' ? 'windows' : process.platform, ...arch };
}

/** Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`), normalising the aliases Docker accepts. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new TsbuildError('PLATFORM', `invalid platform "${text}": expected os/arch[/variant]`);
  }
  const [os, rawArch, rawVariant] = parts as [string, string, string | undefined];
  const { architecture, variant } = normaliseArch(rawArch, rawVariant);
  checkKnown(text, os, architecture, variant);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The operating systems and architectures Go (and so every OCI tool) knows, as BuildKit accepts them. */
const knownOs = ['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux', 'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows'];
const knownArchitectures = ['386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mips64', 'mips64le', 'mipsle', 'ppc64', 'ppc64le', 'riscv64', 's390x', 'wasm'];
/** The variants of each architecture that has any, and how messages list them. */
const knownVariants: Readonly<Record<string, { readonly pattern: RegExp; readonly names: string }>> = {
  amd64: { pattern: /^v[1-4]$/, names: 'v1, v2, v3, v4' },
  arm: { pattern: /^v[5-8]$/, names: 'v5, v6, v7, v8' },
  arm64: { pattern: /^v(8|9)(\.[0-9])?$/, names: 'v8, v8.x, v9, v9.x' },
  riscv64: { pattern: /^rva2[0-9]u64$/, names: 'rva20u64, rva22u64, rva23u64' },
};

/** A platform no image can have (`linux/amd65`) is refused, naming the ones that exist. */
function checkKnown(text: string, os: string, architecture: string, variant: string | undefined): void {
  const fail = (what: string, known: string): never => {
    throw new TsbuildError('PLATFORM', `invalid platform "${text.trim()}": ${what} (known: ${known}); write os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
  };
  if (!knownOs.includes(os)) fail(`unknown operating system "${os}"`, knownOs.join(', '));
  if (!knownArchitectures.includes(architecture)) fail(`unknown architecture "${architecture}"`, knownArchitectures.join(', '));
  const variants = knownVariants[architecture];
  if (variant !== undefined && !variants?.pattern.test(variant)) fail(`unknown variant "${variant}" of ${architecture}`, variants?.names ?? 'none');
}

function normaliseArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  switch (arch) {
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return variant && variant !== 'v1' ? { architecture: 'amd64', variant } : { architecture: 'amd64' };
    case 'aarch64':
    case 'arm64':
      return variant && variant !== '8' && variant !== 'v8' ? { architecture: 'arm64', variant } : { architecture: 'arm64' };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      return { architecture: 'arm', variant: variant ? (variant.startsWith('v') ? variant : `v${variant}`) : 'v7' };
    case 'i386':
      return { architecture: '386' };
    default:
      return variant ? { architecture: arch, variant } : { architecture: arch };
  }
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/** The automatic platform ARGs BuildKit defines for every build. */
export function platformArgs(build: Platform, target: Platform): Map<string, string> {
  return new Map([
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
  ]);
}
