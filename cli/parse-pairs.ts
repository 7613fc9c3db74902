import { TsbuildError } from '../builder/index.js';

/**
 * Parses repeated `KEY=VALUE` flags into a map. A bare `KEY` takes its value from the
 * environment when `fromEnv` is set (as `--build-arg KEY` does in Docker), else it is an error.
 */
export function parsePairs(flag: string, values: readonly string[], fromEnv?: NodeJS.ProcessEnv): Map<string, string> {
  const pairs = new Map<string, string>();
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === 0) throw new TsbuildError('BAD_FLAG', `invalid --${flag} "${value}": empty key`);
    if (eq < 0) {
      const fallback = fromEnv?.[value];
      if (fromEnv === undefined) throw new TsbuildError('BAD_FLAG', `invalid --${flag} "${value}": expected KEY=VALUE`);
      if (fallback !== undefined) pairs.set(value, fallback);
      continue;
    }
    pairs.set(value.slice(0, eq), value.slice(eq + 1));
  }
  return pairs;
}
