import { TsbuildError } from '../../layers/errors.js';

/**
 * The `key=value` fields of one `--output` value, split as buildx splits them: at commas, as a CSV
 * record, so a field in double quotes may hold commas (`"name=a:1,b:1"`) and `""` stands for `"`.
 * Every field must be read by the exporter: `rejectUnread` names the first one that was not.
 */
export class OutputFields {
  private readonly fields = new Map<string, string>();
  private readonly read = new Set<string>(['type']);

  constructor(readonly text: string) {
    for (const part of splitCsv(text, (why) => this.bad(why))) {
      const eq = part.indexOf('=');
      if (eq <= 0) throw this.bad(`expected key=value, got "${part}"`);
      const key = part.slice(0, eq).trim();
      if (this.fields.has(key)) throw this.bad(`"${key}" given twice`);
      this.fields.set(key, part.slice(eq + 1).trim());
    }
  }

  get type(): string | undefined {
    return this.fields.get('type');
  }

  string(key: string): string | undefined {
    this.read.add(key);
    return this.fields.get(key);
  }

  required(key: string, why: string): string {
    const value = this.string(key);
    if (value === undefined || value === '') throw this.bad(`${key} is required: ${why}`);
    return value;
  }

  /** `true`/`false`, or undefined when the key is absent. */
  boolean(key: string): boolean | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false') throw this.bad(`${key} must be true or false, got "${value}"`);
    return value === 'true';
  }

  /** A comma-separated list of names (`name=a:1,b:1` in quotes), or undefined when absent. */
  names(key: string): string[] | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const names = value.split(',').map((n) => n.trim()).filter((n) => n !== '');
    if (names.length === 0) throw this.bad(`${key} is empty`);
    return names;
  }

  /** Fails on the first field no exporter call read. */
  rejectUnread(): void {
    const unread = [...this.fields.keys()].find((key) => !this.read.has(key));
    if (unread !== undefined) throw this.bad(`unknown key "${unread}" for type=${this.type ?? ''}`);
  }

  bad(why: string): TsbuildError {
    return new TsbuildError('BAD_OUTPUT', `invalid --output "${this.text}": ${why}`);
  }
}

/** Splits one CSV record: commas separate fields, a field may be double-quoted with `""` for a quote. */
function splitCsv(text: string, bad: (why: string) => TsbuildError): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch !== '"') field += ch;
      else if (text[i + 1] === '"') field += text[++i];
      else quoted = false;
    } else if (ch === '"') {
      quoted = true;
    } else if (ch === ',') {
      fields.push(field);
      field = '';
    } else {
      field += ch;
    }
  }
  if (quoted) throw bad('unterminated double quote');
  fields.push(field);
  return fields;
}
