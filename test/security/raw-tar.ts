/**
 * Tar archives written byte by byte, so that tests can make the entries tar libraries refuse to
 * write: names with NUL, components longer than the file system allows.
 */

export interface RawEntry {
  readonly name: string;
  readonly type?: '0' | '2' | '5';
  readonly content?: Buffer;
  readonly linkname?: string;
  /** PAX records (`path`, `linkpath`, ...) given in an extended header before the entry. */
  readonly pax?: Readonly<Record<string, string>>;
}

const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, value: string): void {
  header.write(value.slice(0, length), offset, length, 'latin1');
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  field(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** One ustar header block; `name` and `linkname` are cut to their 100-byte fields. */
function headerBlock(name: string, type: string, size: number, linkname = ''): Buffer {
  const header = Buffer.alloc(BLOCK);
  field(header, 0, 100, name);
  octal(header, 100, 8, type === '5' ? 0o755 : 0o644);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, 1700000000);
  header[156] = type.charCodeAt(0);
  field(header, 157, 100, linkname);
  field(header, 257, 6, 'ustar\0');
  field(header, 263, 2, '00');
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

function padded(content: Buffer): Buffer {
  const rest = content.length % BLOCK;
  return rest === 0 ? content : Buffer.concat([content, Buffer.alloc(BLOCK - rest)]);
}

/** A PAX record: its length in decimal counts the whole line, itself included. */
function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.from(` ${key}=${value}\n`);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length += 1;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** An uncompressed tar of `entries`, ended by two zero blocks. */
export function rawTar(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    if (entry.pax) {
      const records = Buffer.concat(Object.entries(entry.pax).map(([key, value]) => paxRecord(key, value)));
      parts.push(headerBlock('PaxHeaders/entry', 'x', records.length), padded(records));
    }
    const content = entry.content ?? Buffer.alloc(0);
    parts.push(headerBlock(entry.name, entry.type ?? '0', content.length, entry.linkname), padded(content));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
