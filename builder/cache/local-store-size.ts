import { TsbuildError } from '../../layers/errors.js';

/** Multipliers by lower-cased unit: SI prefixes count in powers of 1000, IEC ones (KiB...) in powers of 1024. */
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parses a byte count such as `1073741824`, `500MB` (10^6 bytes each) or `10GiB` (2^30 bytes each);
 * units are case-insensitive and fractions are rounded down to whole bytes. `flag` names the
 * option in the error.
 */
export function parseByteSize(value: string, flag = '--cache-max-size'): number {
  const match = SIZE.exec(value.trim());
  const multiplier = match === null ? undefined : UNITS[(match[2] as string).toLowerCase()];
  if (match === null || multiplier === undefined) {
    throw new TsbuildError(
      'BAD_FLAG',
      `invalid ${flag} "${value}": expected a number of bytes, optionally with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 10GiB`,
    );
  }
  const bytes = Math.floor(Number(match[1]) * multiplier);
  if (!Number.isSafeInteger(bytes)) throw new TsbuildError('BAD_FLAG', `invalid ${flag} "${value}": too large`);
  return bytes;
}
