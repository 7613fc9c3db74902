import { isOutputType, outputUsages, parseOutputFields, type OutputSpec } from './exporters.js';
import { OutputFields } from './output-fields.js';

export type { OutputSpec } from './exporters.js';

/**
 * Parses an `--output` value such as `type=oci,dest=out` or `type=docker,dest=img.tar`. As in
 * buildx, a bare path is short for `type=local,dest=PATH`, and `-` for `type=tar,dest=-`.
 */
export function parseOutputSpec(text: string): OutputSpec {
  if (text === '-') return { type: 'tar', dest: '-' };
  if (text !== '' && !text.includes('=') && !text.includes(',')) return { type: 'local', dest: text };
  const fields = new OutputFields(text);
  const type = fields.type;
  if (type === undefined || !isOutputType(type)) {
    throw fields.bad(`unsupported output type "${type ?? ''}" (supported: ${outputUsages().join('; ')})`);
  }
  const spec = parseOutputFields(type, fields);
  fields.rejectUnread();
  return spec;
}
