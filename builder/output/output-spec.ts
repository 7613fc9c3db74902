import { TsbuildError } from '../../layers/errors.js';

/** Where a built image goes. */
export type OutputSpec =
  | { readonly type: 'oci'; readonly dest: string; readonly tar: boolean }
  | { readonly type: 'docker'; readonly dest: string }
  /** Pushes to `name`, or to every `-t` name when absent. */
  | { readonly type: 'registry'; readonly name?: string };

/** Parses an `--output` value such as `type=oci,dest=out` or `type=docker,dest=img.tar`. */
export function parseOutputSpec(text: string): OutputSpec {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(text, `expected key=value, got "${part}"`);
    const key = part.slice(0, eq).trim();
    if (fields.has(key)) throw bad(text, `"${key}" given twice`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  const dest = fields.get('dest');
  const known = type === 'oci' ? ['type', 'dest', 'tar'] : type === 'registry' ? ['type', 'name'] : ['type', 'dest'];
  const unknown = [...fields.keys()].filter((k) => !known.includes(k));
  if (type !== 'oci' && type !== 'docker' && type !== 'registry') {
    throw bad(text, `unsupported output type "${type ?? ''}" (supported: oci, docker, registry)`);
  }
  if (unknown.length > 0) throw bad(text, `unknown key "${unknown[0]}" for type=${type}`);
  if (type === 'registry') {
    const name = fields.get('name');
    return name ? { type, name } : { type };
  }
  if (!dest) throw bad(text, 'dest is required');
  if (type === 'docker') return { type, dest };
  const tar = fields.get('tar') ?? 'false';
  if (tar !== 'true' && tar !== 'false') throw bad(text, `tar must be true or false, got "${tar}"`);
  return { type, dest, tar: tar === 'true' };
}

function bad(text: string, why: string): TsbuildError {
  return new TsbuildError('BAD_OUTPUT', `invalid --output "${text}": ${why}`);
}
