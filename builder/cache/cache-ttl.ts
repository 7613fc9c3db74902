import { TsbuildError } from '../../layers/errors.js';

const TTL_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--cache-ttl`: `3600` (seconds), `90s`, `30m`, `168h` or `7d`, as seconds. */
export function parseCacheTtl(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  const seconds = match ? Number(match[1]) * TTL_UNITS[match[2] || 's']! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new TsbuildError('BAD_FLAG', `invalid --cache-ttl "${text}": expected a positive duration such as 3600 (seconds), 30m, 168h or 7d`);
  }
  return seconds;
}
