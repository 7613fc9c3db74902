/** Canonical JSON: one text for one value, so that hashing it gives a stable key. */
import { TsbuildError } from './errors.js';

/** A JSON value: the only things canonical JSON accepts. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/**
 * JSON with object keys sorted (by UTF-16 code units) at every level and no whitespace, so equal
 * values always give equal text. Throws on anything JSON cannot represent exactly: undefined,
 * functions, symbols, bigints, NaN and infinities, array holes, cycles and non-plain objects.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, '$', new Set());
}

function encode(value: unknown, at: string, open: Set<object>): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return reject(at, String(value));
    return JSON.stringify(value);
  }
  if (typeof value !== 'object') return reject(at, typeof value);
  if (open.has(value)) return reject(at, 'a cycle');
  open.add(value);
  try {
    if (Array.isArray(value)) {
      const items: string[] = [];
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) return reject(`${at}[${i}]`, 'an array hole');
        items.push(encode(value[i], `${at}[${i}]`, open));
      }
      return `[${items.join(',')}]`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return reject(at, `a ${value.constructor?.name ?? 'non-plain'} object`);
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(record[k], `${at}.${k}`, open)}`).join(',')}}`;
  } finally {
    open.delete(value);
  }
}

function reject(at: string, what: string): never {
  throw new TsbuildError('INTERNAL', `canonical JSON cannot hold ${what} (at ${at})`);
}
