/** `--provenance` and `--sbom` values, spelled as buildx spells them. */
import { TsbuildError } from '../../layers/errors.js';
import type { ProvenanceOptions } from './provenance.js';

/** The builder id when `--provenance=builder-id=` does not give one. */
export const DEFAULT_BUILDER_ID = 'urn:tsbuild:builder:local';

/** Which attestations a build attaches to its images. */
export interface AttestOptions {
  /** SLSA provenance; none when absent. */
  readonly provenance?: ProvenanceOptions;
  /** An SPDX SBOM read from the image's package databases. */
  readonly sbom: boolean;
}

/** `true`, `false`, or `mode=min|max[,builder-id=URI][,version=v0.2]`; a bare flag means `true` (mode=min). */
export function parseProvenanceFlag(text: string): ProvenanceOptions | undefined {
  const value = text.trim();
  if (value === '' || value === 'true' || value === '1') return { mode: 'min', builderId: DEFAULT_BUILDER_ID };
  if (value === 'false' || value === '0') return undefined;
  const fields = keyValues('--provenance', value);
  for (const key of fields.keys()) {
    if (!['mode', 'builder-id', 'version', 'disabled'].includes(key)) throw bad('--provenance', value, `unknown key "${key}" (supported: mode, builder-id, version, disabled)`);
  }
  if (fields.get('disabled') === 'true') return undefined;
  const mode = fields.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw bad('--provenance', value, `mode must be min or max, got "${mode}"`);
  const version = fields.get('version') ?? 'v0.2';
  if (version !== 'v0.2') throw bad('--provenance', value, `only SLSA provenance version v0.2 is written, not "${version}"`);
  const builderId = fields.get('builder-id') ?? DEFAULT_BUILDER_ID;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(builderId)) throw bad('--provenance', value, `builder-id must be a URI, got "${builderId}"`);
  return { mode, builderId };
}

/** `true` or `false`; a bare flag means `true`. */
export function parseSbomFlag(text: string): boolean {
  const value = text.trim();
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  const fields = keyValues('--sbom', value);
  if (fields.has('generator')) {
    throw bad('--sbom', value, 'tsbuild reads the package databases itself and runs no scanner image; use --sbom=true');
  }
  if (fields.get('disabled') === 'true' && fields.size === 1) return false;
  throw bad('--sbom', value, 'expected true or false');
}

function keyValues(flag: string, value: string): Map<string, string> {
  if (!value.includes('=')) throw bad(flag, value, `expected true, false or key=value (write ${flag}=true: a bare ${flag} takes the next argument as its value)`);
  const fields = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(flag, value, `expected true, false or key=value, got "${part}"`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return fields;
}

function bad(flag: string, value: string, why: string): TsbuildError {
  return new TsbuildError('BAD_FLAG', `invalid ${flag} "${value}": ${why}`);
}

/** The attestations `--provenance` and `--sbom` ask for; undefined when they ask for none. */
export function attestOptions(provenance: string | undefined, sbom: string | undefined): AttestOptions | undefined {
  const parsedProvenance = provenance === undefined ? undefined : parseProvenanceFlag(provenance);
  const parsedSbom = sbom === undefined ? false : parseSbomFlag(sbom);
  if (!parsedProvenance && !parsedSbom) return undefined;
  return { ...(parsedProvenance ? { provenance: parsedProvenance } : {}), sbom: parsedSbom };
}
