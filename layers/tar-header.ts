/**
 * The 512-byte blocks of a ustar archive that are not file contents: entry headers and PAX
 * extended headers. Written by hand into the output buffer, so a layer of many small files costs no
 * per-entry stream or object beyond its header bytes.
 */
import { TsbuildError } from './errors.js';

export const BLOCK = 512;

/** The typeflag byte of each ustar entry type. */
export type TarType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo';

const TYPEFLAGS: Record<TarType, number> = {
  file: 0x30,
  link: 0x31,
  symlink: 0x32,
  'character-device': 0x33,
  'block-device': 0x34,
  directory: 0x35,
  fifo: 0x36,
};

/** One ustar header's fields; every number must fit its field (the writer moves larger ones to PAX records). */
export interface UstarFields {
  /** ASCII, at most 100 bytes. */
  name: string;
  type: TarType;
  /** Permission bits (masked to 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

/**
 * Writes the ustar header of `fields` into `block` at `at` (512 bytes, which must be zero): numbers
 * as zero-padded octal digits followed by a space, empty owner names, and the checksum as six
 * digits, a space and a NUL.
 */
export function writeUstarHeader(block: Buffer, at: number, fields: UstarFields): void {
  block.write(fields.name, at, 'latin1');
  octalSpace(block, at + 100, 6, fields.mode & 0o7777);
  octalSpace(block, at + 108, 6, fields.uid);
  octalSpace(block, at + 116, 6, fields.gid);
  octalSpace(block, at + 124, 11, fields.size);
  octalSpace(block, at + 136, 11, fields.mtime);
  block[at + 156] = TYPEFLAGS[fields.type];
  if (fields.linkname) block.write(fields.linkname, at + 157, 'latin1');
  block.write('ustar\x0000', at + 257, 'latin1');
  octalSpace(block, at + 329, 6, fields.devmajor ?? 0);
  octalSpace(block, at + 337, 6, fields.devminor ?? 0);
  // The checksum counts its own field as eight spaces.
  let sum = 8 * 0x20;
  for (let i = at; i < at + 148; i++) sum += block[i]!;
  for (let i = at + 156; i < at + BLOCK; i++) sum += block[i]!;
  octalSpace(block, at + 148, 6, sum);
}

function octalSpace(block: Buffer, offset: number, digits: number, value: number): void {
  const text = value.toString(8);
  if (text.length > digits) throw new TsbuildError('TAR_ENTRY', `value ${value} does not fit a tar header field`);
  block.write(`${'0'.repeat(digits - text.length)}${text} `, offset, 'latin1');
}

/** A PAX record, `<length> <key>=<value>\n`, where length counts the whole record including its own digits. */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + String(body.length).length;
  while (body.length + String(length).length !== length) length = body.length + String(length).length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/**
 * A PAX extended header ('x') and its records, padded to whole blocks. Binary xattr values stay
 * bytes: records are never decoded as text.
 */
export function paxHeaderBlock(records: Buffer[], mtime: number): Buffer {
  const data = Buffer.concat(records);
  const header = Buffer.alloc(BLOCK);
  header.write('PaxHeader', 0, 'ascii');
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, data.length);
  writeOctal(header, 136, 12, mtime);
  header.write('x', 156, 'ascii');
  header.write('ustar\x0000', 257, 'latin1');
  // The checksum is the byte sum of the header with the checksum field itself read as spaces.
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return Buffer.concat([header, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK)]);
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new TsbuildError('TAR_ENTRY', `value ${value} does not fit a tar header field`);
  block.write(`${digits}\0`, offset, 'ascii');
}
