import { WORKLOAD_IDS, type WorkloadId } from './workloads.js';

export interface BenchOptions {
  readonly only: readonly WorkloadId[];
  readonly runs: number;
  readonly json?: string;
}

export const USAGE = 'usage: npm run bench -- [--only w1,w2,...] [--runs N] [--json FILE]';

/** Parses `--only w2` (repeatable or comma-separated), `--runs N` and `--json FILE`; throws a one-line message on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const only: WorkloadId[] = [];
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
      for (const id of value().split(',')) {
        if (!(WORKLOAD_IDS as readonly string[]).includes(id)) throw new Error(`unknown workload "${id}" (expected one of ${WORKLOAD_IDS.join(', ')})`);
        if (!only.includes(id as WorkloadId)) only.push(id as WorkloadId);
      }
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
  return { only: only.length > 0 ? only : WORKLOAD_IDS, runs, ...(json !== undefined && { json }) };
}
