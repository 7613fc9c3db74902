/**
 * Durations such as `1h30m`, `1.5s` or `300ms`, read with the rules and messages of Go's
 * `time.ParseDuration`, which BuildKit uses for HEALTHCHECK intervals.
 */
import { ParseFailure } from './parse-failure.js';

const NANOSECONDS_PER_UNIT: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // micro sign
  ['\u03bcs', 1_000n], // Greek mu
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);
const LIMIT = 1n << 63n;
const PIECE = /^([0-9]*)(?:\.([0-9]*))?([^.0-9]*)/;

/**
 * Nanoseconds. Sums of decimal numbers with units (`ns us µs ms s m h`), optionally signed;
 * a bare `0` needs no unit. Values beyond 2^53 ns (about 104 days) lose precision.
 */
export function parseGoDuration(text: string): number {
  const invalid = (): ParseFailure => new ParseFailure(`time: invalid duration ${timeQuote(text)}`);
  const negative = text.startsWith('-');
  let rest = text.startsWith('-') || text.startsWith('+') ? text.slice(1) : text;
  if (rest === '0') return 0;
  if (rest === '') throw invalid();

  let total = 0n;
  while (rest !== '') {
    const match = PIECE.exec(rest);
    const [piece = '', whole = '', fraction, unitName = ''] = match ?? [];
    if (!/^[.0-9]/.test(rest) || (whole === '' && !fraction)) throw invalid();
    if (unitName === '') throw new ParseFailure(`time: missing unit in duration ${timeQuote(text)}`);
    const unit = NANOSECONDS_PER_UNIT.get(unitName);
    if (unit === undefined) {
      throw new ParseFailure(`time: unknown unit ${timeQuote(unitName)} in duration ${timeQuote(text)}`);
    }
    const wholeValue = BigInt(whole === '' ? '0' : whole);
    if (wholeValue > LIMIT || wholeValue > LIMIT / unit) throw invalid();
    let value = wholeValue * unit;
    value += fractionNanoseconds(fraction ?? '', unit);
    if (value > LIMIT) throw invalid();
    total += value;
    if (total > LIMIT) throw invalid();
    rest = rest.slice(piece.length);
  }
  if (negative) return -Number(total);
  if (total > LIMIT - 1n) throw invalid();
  return Number(total);
}

/**
 * The fraction's share in nanoseconds, computed in floating point as the reference does.
 * Digits beyond 63 bits of precision are ignored.
 */
function fractionNanoseconds(digits: string, unit: bigint): bigint {
  let numerator = 0n;
  let scale = 1;
  for (const digit of digits) {
    const next = numerator * 10n + BigInt(digit);
    if (numerator > (LIMIT - 1n) / 10n || next > LIMIT) break;
    numerator = next;
    scale *= 10;
  }
  if (numerator === 0n) return 0n;
  return BigInt(Math.trunc(Number(numerator) * (Number(unit) / scale)));
}

/** Go's `time` package quoting: non-ASCII and control characters become `\xNN` bytes. */
function timeQuote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 || code >= 0x80) {
      for (const byte of Buffer.from(ch, 'utf8')) out += `\\x${byte.toString(16).padStart(2, '0')}`;
    } else {
      out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
    }
  }
  return `${out}"`;
}
