/** Golden files and the comparison of a snapshot with one, with accepted differences applied. */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Snapshot } from './snapshot.js';
import { ABSENT, type Difference } from './differences.js';

/** The snapshot of a build that failed: BuildKit's failures must be tsbuild's too. */
export const FAILED: Snapshot = new Map([['build', 'fails']]);

const SEPARATOR = ' = ';

export function formatGolden(snapshot: Snapshot, header: readonly string[]): string {
  return [...header.map((line) => `# ${line}`), ...[...snapshot].map(([key, value]) => `${key}${SEPARATOR}${value}`), ''].join('\n');
}

export function parseGolden(text: string, file: string): Snapshot {
  const snapshot: Snapshot = new Map();
  text.split('\n').forEach((line, index) => {
    if (line === '' || line.startsWith('#')) return;
    const at = line.indexOf(SEPARATOR);
    if (at < 0) throw new Error(`${file}:${index + 1}: expected "key = value"`);
    snapshot.set(line.slice(0, at), line.slice(at + SEPARATOR.length));
  });
  return snapshot;
}

export function readGolden(file: string): Snapshot {
  return parseGolden(readFileSync(file, 'utf8'), file);
}

/** The comment lines at the top of a golden file. */
export function goldenHeader(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const end = lines.findIndex((line) => !line.startsWith('#'));
  return lines.slice(0, end).map((line) => line.replace(/^# ?/, ''));
}

export function writeGolden(file: string, snapshot: Snapshot, header: readonly string[]): void {
  writeFileSync(file, formatGolden(snapshot, header));
}

export interface Comparison {
  /** Readable lines, one block per key that differs and is not accepted. */
  readonly unexplained: string[];
  /** The keys that differ as a listed deliberate difference allows, with its id. */
  readonly accepted: string[];
}

/** Compares key by key; a key that differs as `differences` allows is accepted, not reported. */
export function compare(expected: Snapshot, actual: Snapshot, accept: (key: string, actual: string | undefined) => Difference | undefined): Comparison {
  const wantFailure = expected.get('build') === FAILED.get('build');
  if (wantFailure !== (actual.get('build') === FAILED.get('build'))) {
    return { unexplained: [wantFailure ? '  BuildKit fails this build; tsbuild builds it' : '  BuildKit builds this; tsbuild fails'], accepted: [] };
  }
  const keys = [...new Set([...expected.keys(), ...actual.keys()])];
  const unexplained: string[] = [];
  const accepted: string[] = [];
  for (const key of keys) {
    const want = expected.get(key);
    const got = actual.get(key);
    if (want === got) continue;
    const difference = accept(key, got);
    if (difference !== undefined) {
      accepted.push(`${key} (${difference.id})`);
      continue;
    }
    unexplained.push(`  ${key}\n    - BuildKit: ${want ?? ABSENT}\n    + tsbuild:  ${got ?? ABSENT}`);
  }
  return { unexplained, accepted };
}
