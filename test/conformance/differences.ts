/**
 * The deliberate differences from BuildKit (differences.json): each names the cases and snapshot keys
 * it covers (with `*` wildcards), what differs, and why a user can accept it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/repo-root.js';

export interface Difference {
  readonly id: string;
  /** Case names, `*` matching any run of characters. */
  readonly cases: readonly string[];
  /** Snapshot keys (`config.WorkingDir`, `/path`), `*` matching any run of characters. */
  readonly keys: readonly string[];
  /** When set, the difference is accepted only where tsbuild's value is this (`(absent)` for none). */
  readonly tsbuild?: string;
  /** What tsbuild does differently, in a user's words. */
  readonly behaviour: string;
  /** Why a user can accept it. */
  readonly reason: string;
}

export function differencesFile(): string {
  return join(repoRoot(), 'test', 'conformance', 'differences.json');
}

export function loadDifferences(file = differencesFile()): Difference[] {
  const list = JSON.parse(readFileSync(file, 'utf8')) as Difference[];
  if (!Array.isArray(list)) throw new Error(`${file}: expected a JSON array`);
  for (const [index, d] of list.entries()) {
    for (const field of ['id', 'behaviour', 'reason'] as const) {
      if (typeof d[field] !== 'string' || d[field].trim() === '') throw new Error(`${file}: entry ${index} needs a non-empty "${field}"`);
    }
    for (const field of ['cases', 'keys'] as const) {
      if (!Array.isArray(d[field]) || d[field].length === 0) throw new Error(`${file}: entry ${d.id} needs a non-empty "${field}" list`);
    }
  }
  return list;
}

/** A pattern where `*` matches any run of characters and everything else matches itself. */
export function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

export const ABSENT = '(absent)';

/** The difference that accepts tsbuild's value `actual` (undefined: absent) for `key` of `caseName`, if any. */
export function acceptor(differences: readonly Difference[], caseName: string): (key: string, actual: string | undefined) => Difference | undefined {
  const applicable = differences.filter((d) => d.cases.some((c) => wildcard(c).test(caseName)));
  return (key, actual) => applicable.find((d) => d.keys.some((k) => wildcard(k).test(key)) && (d.tsbuild === undefined || d.tsbuild === (actual ?? ABSENT)));
}
