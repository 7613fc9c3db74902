/**
 * Instruction flags (`--from=x`, `--link`, `--mount=...` repeated): checked against the flags
 * an instruction accepts, with the reference's messages.
 */
import { ParseFailure } from './parse-failure.js';
import { withSuggestion } from './parse-suggest.js';

/** `bool`: `--f`, `--f=true|false`; `string`: `--f=v` once; `strings`: `--f=v`, repeatable. */
export type FlagKind = 'bool' | 'string' | 'strings';

export class ParsedFlags {
  constructor(private readonly values: ReadonlyMap<string, readonly string[]>) {}

  /** The value, or undefined when the flag was not given. */
  string(name: string): string | undefined {
    return this.values.get(name)?.[0];
  }

  /** Undefined when the flag was not given. */
  bool(name: string): boolean | undefined {
    const value = this.values.get(name)?.[0];
    return value === undefined ? undefined : value === 'true';
  }

  strings(name: string): string[] {
    return [...(this.values.get(name) ?? [])];
  }
}

export function parseFlags(raw: readonly string[], accepted: Readonly<Record<string, FlagKind>>): ParsedFlags {
  const values = new Map<string, string[]>();
  for (const flag of raw) {
    if (flag === '--') break;
    if (!flag.startsWith('--')) throw new ParseFailure(`arg should start with -- : ${flag}`);
    const eq = flag.indexOf('=');
    const flagName = eq < 0 ? flag : flag.slice(0, eq);
    const value = eq < 0 ? undefined : flag.slice(eq + 1);
    const name = flagName.slice(2);
    const kind = Object.hasOwn(accepted, name) ? accepted[name] : undefined;
    if (kind === undefined) {
      throw new ParseFailure(withSuggestion(`unknown flag: ${flagName}`, name, Object.keys(accepted), true));
    }
    const seen = values.get(name);
    if (seen !== undefined && kind !== 'strings') throw new ParseFailure(`duplicate flag specified: ${flagName}`);
    values.set(name, [...(seen ?? []), flagValue(kind, flagName, value)]);
  }
  return new ParsedFlags(values);
}

function flagValue(kind: FlagKind, flagName: string, value: string | undefined): string {
  if (kind !== 'bool') {
    if (value === undefined) throw new ParseFailure(`missing a value on flag: ${flagName}`);
    return value;
  }
  if (value === '') throw new ParseFailure(`missing a value on flag: ${flagName}`);
  const lower = (value ?? '').toLowerCase();
  if (lower === 'true' || lower === '') return 'true';
  if (lower === 'false') return 'false';
  throw new ParseFailure(`expecting boolean value for flag ${flagName}, not: ${value}`);
}
