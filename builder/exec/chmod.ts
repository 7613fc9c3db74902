import { TsbuildError } from '../../layers/errors.js';

/** A `--chmod` value: a function from an entry's current mode and type to its new mode. */
export type ModeChange = (mode: number, isDirectory: boolean) => number;

/**
 * Parses `--chmod`: an octal mode (`755`, `0644`, `4755`) or a symbolic one (`u+x,go-w`, `a=rX`),
 * as BuildKit accepts.
 */
export function parseChmod(spec: string): ModeChange {
  if (/^[0-7]{1,4}$/.test(spec)) {
    const mode = parseInt(spec, 8);
    return () => mode;
  }
  const clauses = spec.split(',').map((clause) => parseClause(clause, spec));
  return (mode, isDirectory) => clauses.reduce((m, apply) => apply(m, isDirectory), mode & 0o7777);
}

const whoBits: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 };

function parseClause(clause: string, spec: string): ModeChange {
  const match = /^([ugoa]*)([-+=])([rwxXst]*)$/.exec(clause);
  if (!match) throw new TsbuildError('BAD_CHMOD', `invalid --chmod value "${spec}"`);
  const [, who, op, perms] = match as unknown as [string, string, string, string];
  const mask = (who === '' ? 'a' : who).split('').reduce((m, w) => m | whoBits[w]!, 0);
  return (mode, isDirectory) => {
    const executable = isDirectory || (mode & 0o111) !== 0;
    let bits = 0;
    for (const p of perms) {
      if (p === 'r') bits |= 0o444;
      else if (p === 'w') bits |= 0o222;
      else if (p === 'x' || (p === 'X' && executable)) bits |= 0o111;
      else if (p === 's') bits |= 0o6000;
      else if (p === 't') bits |= 0o1000;
    }
    bits &= mask;
    if (op === '+') return mode | bits;
    if (op === '-') return mode & ~bits;
    return (mode & ~mask) | bits;
  };
}
