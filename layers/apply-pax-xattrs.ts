/** Extended attributes of one entry: name (e.g. `security.capability`) to raw value. */
export type Xattrs = Record<string, Buffer>;

const BLOCK = 512;
const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

/** Header type flags (after subtracting ASCII '0') that describe the next entry instead of being one. */
const PAX_HEADER = 72; // 'x'
const PAX_GLOBAL_HEADER = 55; // 'g'
const GNU_LONG_LINK = 27; // 'K'
const GNU_LONG_NAMES = new Set([28, 30]); // 'L', 'N'
const DIRECTORY = 5;

/**
 * Reads the extended attributes in the PAX headers of a tar stream byte for byte, as its chunks are
 * fed in before they go to the tar reader. The reader decodes PAX values as UTF-8 text, which
 * mangles binary values such as `security.capability`; this keeps the raw bytes instead.
 *
 * Entries are numbered from 0 in the order the tar reader emits them: PAX and GNU long-name headers
 * are not entries, and a directory's data is not skipped, exactly as the reader does, so that
 * `take(n)` belongs to the n-th emitted entry.
 */
export class PaxXattrScanner {
  private readonly found = new Map<number, Xattrs>();
  private readonly header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  /** Bytes of entry data and padding still to pass over. */
  private skip = 0;
  /** The body of a PAX header being collected, and how much of it is still missing. */
  private meta: { global: boolean; size: number; left: number; parts: Buffer[] } | null = null;
  private globalRecords = new Map<string, Buffer>();
  private entryRecords: Map<string, Buffer> | null = null;
  private entries = 0;

  /** The extended attributes of the entry numbered `index`, forgotten once taken. */
  take(index: number): Xattrs | undefined {
    const xattrs = this.found.get(index);
    this.found.delete(index);
    return xattrs;
  }

  /** Feeds the next chunk of the tar stream. */
  scan(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
      } else if (this.meta !== null) {
        const n = Math.min(this.meta.left, chunk.length - offset);
        this.meta.parts.push(chunk.subarray(offset, offset + n));
        this.meta.left -= n;
        offset += n;
        if (this.meta.left === 0) this.finishMeta(this.meta);
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - offset);
        chunk.copy(this.header, this.headerFill, offset, offset + n);
        this.headerFill += n;
        offset += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.header);
        }
      }
    }
  }

  private onHeader(block: Buffer): void {
    if (isZeroBlock(block)) return;
    const typeflag = block[156] === 0 ? 0 : block[156] - 48;
    const size = readSize(block.subarray(124, 136));
    if (typeflag === PAX_HEADER || typeflag === PAX_GLOBAL_HEADER) {
      this.meta = { global: typeflag === PAX_GLOBAL_HEADER, size, left: size, parts: [] };
      if (size === 0) this.finishMeta(this.meta);
      return;
    }
    if (typeflag === GNU_LONG_LINK || GNU_LONG_NAMES.has(typeflag)) {
      this.skip = size + padding(size);
      return;
    }

    const index = this.entries++;
    const records = this.entryRecords;
    this.entryRecords = null;
    let dataSize = size;
    const paxSize = records?.get('size')?.toString();
    if (paxSize) dataSize = parseInt(paxSize, 10);
    const isDirectory = typeflag === DIRECTORY || (typeflag === 0 && nameEndsWithSlash(block));
    if (!isDirectory && dataSize > 0) this.skip = dataSize + padding(dataSize);
    if (records) {
      const xattrs = xattrsOf(records);
      if (xattrs) this.found.set(index, xattrs);
    }
  }

  private finishMeta(meta: { global: boolean; size: number; parts: Buffer[] }): void {
    this.meta = null;
    const records = parsePaxRecords(Buffer.concat(meta.parts));
    // Like the tar reader: a global header replaces the previous one and is merged only into
    // entries that carry a PAX header of their own.
    if (meta.global) this.globalRecords = records;
    else this.entryRecords = new Map([...this.globalRecords, ...records]);
    this.skip = padding(meta.size);
  }
}

function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) {
    if ((i < 148 || i >= 156) && block[i] !== 0) return false;
  }
  return true;
}

function nameEndsWithSlash(block: Buffer): boolean {
  const end = block.subarray(0, 100).indexOf(0);
  const length = end === -1 ? 100 : end;
  return length > 0 && block[length - 1] === 0x2f;
}

function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** A numeric header field: base-256 when its high bit is set, otherwise octal text. */
function readSize(field: Buffer): number {
  if (field[0] & 0x80) {
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i];
    return value;
  }
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  let value = 0;
  while (i < field.length && field[i] >= 0x30 && field[i] <= 0x37) value = value * 8 + (field[i++] - 0x30);
  return value;
}

/** PAX records (`<length> <key>=<value>\n`), values kept as raw bytes. */
function parsePaxRecords(body: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let rest = body;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space === -1) break;
    const length = parseInt(rest.subarray(0, space).toString(), 10);
    if (!length) break;
    const record = rest.subarray(space + 1, length - 1);
    const equals = record.indexOf(0x3d);
    if (equals === -1) break;
    records.set(record.subarray(0, equals).toString(), Buffer.from(record.subarray(equals + 1)));
    rest = rest.subarray(length);
  }
  return records;
}

/** `SCHILY.xattr.<name>` holds the raw value; `LIBARCHIVE.xattr.<url-encoded name>` base64. SCHILY wins. */
function xattrsOf(records: Map<string, Buffer>): Xattrs | undefined {
  const xattrs: Xattrs = {};
  for (const [key, value] of records) {
    if (!key.startsWith(LIBARCHIVE_XATTR)) continue;
    const name = decodeName(key.slice(LIBARCHIVE_XATTR.length));
    if (name) xattrs[name] = Buffer.from(value.toString(), 'base64');
  }
  for (const [key, value] of records) {
    const name = key.startsWith(SCHILY_XATTR) ? key.slice(SCHILY_XATTR.length) : '';
    if (name) xattrs[name] = value;
  }
  return Object.keys(xattrs).length > 0 ? xattrs : undefined;
}

function decodeName(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}
