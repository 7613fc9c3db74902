import { WORKLOAD_IDS, type WorkloadId } from './workloads.js';

/** The `--isolation` values the bench measures tsbuild with, one table row each, in table order. */
export const ISOLATION_ROWS = ['oci', 'chroot', 'rootless', 'none'] as const;
export type IsolationRow = (typeof ISOLATION_ROWS)[number];

export interface BenchOptions {
  readonly only: readonly WorkloadId[];
  readonly isolation: readonly IsolationRow[];
  readonly runs: number;
  readonly json?: string;
}

export const USAGE = 'usage: npm run bench -- [--only w1,w2,...] [--isolation oci,chroot,rootless,none] [--runs N] [--json FILE]';

/** Adds the values of one list flag (comma-separated) to `chosen`, each checked against `known`. */
function pickList<T extends string>(chosen: T[], text: string, known: readonly T[], what: string): void {
  for (const item of text.split(',')) {
    if (!(known as readonly string[]).includes(item)) throw new Error(`unknown ${what} "${item}" (expected one of ${known.join(', ')})`);
    if (!chosen.includes(item as T)) chosen.push(item as T);
  }
}

/**
 * Parses `--only w2`, `--isolation rootless` (both repeatable or comma-separated; all when absent),
 * `--runs N` and `--json FILE`; throws a one-line message on bad input.
 */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const only: WorkloadId[] = [];
  const isolation: IsolationRow[] = [];
  let runs = 3;
  let json: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = (): string => {
      const next = inline ?? argv[++i];
      if (next === undefined || next === '') throw new Error(`${flag} needs a value; ${USAGE}`);
      return next;
    };
    if (flag === '--only') {
      pickList(only, value(), WORKLOAD_IDS, 'workload');
    } else if (flag === '--isolation') {
      pickList(isolation, value(), ISOLATION_ROWS, 'isolation');
    } else if (flag === '--runs') {
      const text = value();
      runs = Number(text);
      if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive whole number, not "${text}"`);
    } else if (flag === '--json') {
      json = value();
    } else {
      throw new Error(`unknown argument "${argv[i]}"; ${USAGE}`);
    }
  }
  const inOrder = <T>(chosen: readonly T[], all: readonly T[]): readonly T[] => (chosen.length > 0 ? all.filter((item) => chosen.includes(item)) : all);
  return { only: inOrder(only, WORKLOAD_IDS), isolation: inOrder(isolation, ISOLATION_ROWS), runs, ...(json !== undefined && { json }) };
}
