import { TsbuildError } from './errors.js';
import type { Platform } from './types.js';

/** Architecture names as the image-spec spells them. */
const ARCHITECTURE_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64' };
/** The variant an architecture means when none is written (arm64 is v8 unless it says otherwise). */
const DEFAULT_VARIANTS: Record<string, string> = { arm64: 'v8', arm: 'v7' };

/** `os`, `architecture` and `variant` with aliases resolved and default variants filled in. */
export function normalizePlatform(platform: Platform): { os: string; architecture: string; variant: string | undefined } {
  const architecture = ARCHITECTURE_ALIASES[platform.architecture] ?? platform.architecture;
  return { os: platform.os, architecture, variant: platform.variant || DEFAULT_VARIANTS[architecture] };
}

export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const a = normalizePlatform(candidate);
  const b = normalizePlatform(wanted);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/** `linux/arm64/v8`. */
export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** The error for an image that has no manifest for `wanted`, naming the platforms it has. */
export function noMatchingPlatform(what: string, wanted: Platform, available: readonly Platform[]): TsbuildError {
  // Attestation manifests are listed as unknown/unknown: not worth naming.
  const names = [...new Set(available.filter((p) => p.os !== 'unknown').map(formatPlatform))];
  return new TsbuildError(
    'PLATFORM',
    `no matching platform: ${what} has no image for ${formatPlatform(wanted)} (available: ${names.length > 0 ? names.join(', ') : 'none'})`,
  );
}
