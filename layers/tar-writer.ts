import { PassThrough, pipeline, type Readable } from 'node:stream';
import { pack as createPack, type Pack } from 'tar-stream';
import type { LayerEntry } from './entry.js';
import { TsbuildError } from './errors.js';
import { drainedOrClosed } from './stream-util.js';

export interface TarOptions {
  /** When set, every mtime later than this (seconds since the epoch) is written as this. */
  sourceDateEpoch?: number;
}

const BLOCK = 512;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_NAME = '.wh..wh..opq';
/** Largest values tar-stream writes into ustar fields correctly; larger ones go into PAX records. */
const MAX_USTAR_ID = 0o777777;
const MAX_USTAR_SIZE = 0o77777777777;
const MAX_USTAR_MTIME = 2 ** 31 - 1;
const MAX_USTAR_NAME = 100;
/**
 * tar-stream replaces a mode of 0 with a default; a file-type bit keeps the mode non-zero
 * and is masked off again when the header is encoded, so 0 permission bits survive.
 */
const FILE_TYPE_BIT = 0o100000;

type TarHeader = Parameters<Pack['entry']>[0];
/** The writable side of one tar entry. */
type Sink = ReturnType<Pack['entry']>;

const TAR_TYPES: Record<LayerEntry['type'], NonNullable<TarHeader['type']>> = {
  file: 'file',
  directory: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  fifo: 'fifo',
  char: 'character-device',
  block: 'block-device',
  whiteout: 'file',
  opaque: 'file',
};

/** One entry ready to be written: its tar name and the key that fixes its place in the archive. */
interface TarRecord {
  entry: LayerEntry;
  /** The path in the archive, without a trailing slash. */
  path: string;
  /** Compared bytewise: parents before children, whiteouts before their siblings, then bytewise by component. */
  key: Buffer;
  mtime: number;
}

/**
 * Streams `entries` as a deterministic tar: the same entries, in any order, give the same bytes.
 * Invalid entries, and regular files whose length differs from `size`, fail the stream.
 */
export function layerTar(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: TarOptions = {},
): Readable {
  const pack = createPack();
  const output = new PassThrough();
  // Errors on either side destroy both; the consumer sees them on `output`.
  pipeline(pack, output, () => undefined);
  writeEntries(entries, options, pack, output).then(
    () => pack.finalize(),
    (error: unknown) => pack.destroy(error instanceof Error ? error : new Error(String(error))),
  );
  return output;
}

async function writeEntries(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: TarOptions,
  pack: Pack,
  output: PassThrough,
): Promise<void> {
  const epoch = options.sourceDateEpoch;
  if (epoch !== undefined && !Number.isSafeInteger(epoch)) {
    throw new TsbuildError('SOURCE_DATE_EPOCH', `source date epoch must be an integer number of seconds, got ${epoch}`);
  }
  const records: TarRecord[] = [];
  for await (const entry of entries) records.push(toRecord(entry, epoch));
  records.sort((a, b) => Buffer.compare(a.key, b.key));
  checkUnique(records);
  checkHardlinks(records);

  for (const record of records) {
    if (output.destroyed) return;
    await writeRecord(pack, record);
    // Headers of entries without contents are pushed without waiting; stop while the consumer lags.
    if (output.writableNeedDrain) await drainedOrClosed(output);
  }
}

function toRecord(entry: LayerEntry, epoch: number | undefined): TarRecord {
  const components = checkPath(entry.path, entry.type === 'opaque');
  checkFields(entry);
  let last: string | undefined;
  if (entry.type === 'whiteout') last = WHITEOUT_PREFIX + components.pop();
  if (entry.type === 'opaque') last = OPAQUE_NAME;
  const path = last === undefined ? components.join('/') : [...components, last].join('/');
  const keyParts = components.map((component) => `\x02${component}`);
  // Whiteouts get a lower class byte so they come before their siblings, as the OCI spec asks.
  if (last !== undefined) keyParts.push(`\x01${last}`);
  const mtime = Math.floor(entry.mtime);
  return {
    entry,
    path,
    key: Buffer.from(keyParts.join('\x00'), 'utf8'),
    mtime: epoch === undefined ? mtime : Math.min(mtime, epoch),
  };
}

/** Splits a root-relative path into components, refusing anything that could escape or fake a whiteout. */
function checkPath(path: string, allowRoot: boolean): string[] {
  if (path === '' && allowRoot) return [];
  const components = path.split('/');
  for (const component of components) {
    if (component === '' || component === '.' || component === '..' || component.includes('\0')) {
      throw new TsbuildError('TAR_PATH', `invalid layer path ${JSON.stringify(path)}: it must be relative, without empty, "." or ".." components`);
    }
    if (component.startsWith(WHITEOUT_PREFIX)) {
      throw new TsbuildError('TAR_WHITEOUT_NAME', `layer path ${JSON.stringify(path)} has a name starting with ${WHITEOUT_PREFIX}, which is reserved for whiteouts`);
    }
  }
  return components;
}

function checkFields(entry: LayerEntry): void {
  const fail = (what: string): never => {
    throw new TsbuildError('TAR_ENTRY', `layer entry ${JSON.stringify(entry.path)}: ${what}`);
  };
  if (!Number.isFinite(entry.mtime)) fail(`invalid mtime ${entry.mtime}`);
  if (entry.type === 'whiteout' || entry.type === 'opaque') return;
  if (!Number.isSafeInteger(entry.mode) || entry.mode < 0) fail(`invalid mode ${entry.mode}`);
  for (const [name, id] of [['uid', entry.uid], ['gid', entry.gid]] as const) {
    if (!Number.isSafeInteger(id) || id < 0) fail(`invalid ${name} ${id}`);
  }
  for (const name of Object.keys(entry.xattrs ?? {})) {
    if (name === '' || name.includes('=') || name.includes('\0')) fail(`invalid xattr name ${JSON.stringify(name)}`);
  }
  switch (entry.type) {
    case 'file':
      if (entry.size === undefined || !Number.isSafeInteger(entry.size) || entry.size < 0) fail(`invalid size ${entry.size}`);
      if (entry.size! > 0 && entry.open === undefined) fail('a non-empty file needs contents');
      break;
    case 'symlink':
      if (!entry.linkTarget || entry.linkTarget.includes('\0')) fail('a symlink needs a target');
      break;
    case 'hardlink':
      if (entry.linkTarget === undefined) fail('a hardlink needs a target');
      checkPath(entry.linkTarget!, false);
      break;
    case 'char':
    case 'block':
      for (const number of [entry.devMajor ?? 0, entry.devMinor ?? 0]) {
        if (!Number.isSafeInteger(number) || number < 0 || number > MAX_USTAR_ID) fail(`invalid device number ${number}`);
      }
      break;
  }
}

function checkUnique(sorted: TarRecord[]): void {
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].key.equals(sorted[i - 1].key)) {
      throw new TsbuildError('TAR_DUPLICATE', `layer path ${JSON.stringify(sorted[i].path)} appears more than once`);
    }
  }
}

/** A hardlink names an entry that the archive holds before it; extractors resolve links only backwards. */
function checkHardlinks(sorted: TarRecord[]): void {
  const seen = new Map<string, LayerEntry>();
  for (const { entry, path } of sorted) {
    if (entry.type === 'hardlink') {
      const target = seen.get(entry.linkTarget!);
      if (target === undefined || target.type === 'directory') {
        throw new TsbuildError('TAR_HARDLINK', `hardlink ${JSON.stringify(path)} must link to a non-directory that comes earlier in the layer, not ${JSON.stringify(entry.linkTarget)}`);
      }
    }
    seen.set(path, entry);
  }
}

async function writeRecord(pack: Pack, record: TarRecord): Promise<void> {
  const { header, pax } = tarHeader(record);
  // Between entries the pack is idle, so an extended header pushed here lands right before its entry.
  if (pax.length > 0) pack.push(paxHeaderBlock(pax, header.mtime!));
  let sink: Sink | undefined;
  const written = new Promise<void>((resolve, reject) => {
    sink = pack.entry(header, (error) => (error ? reject(error) : resolve()));
    // The callback above reports the same error; this only keeps it from being unhandled.
    sink.on('error', () => undefined);
  });
  if (header.type !== 'file') return written;
  // Whiteout markers are empty regular files: nothing to read.
  const open = record.entry.type === 'file' ? record.entry.open : undefined;
  const copied = copyContents(record.path, open, header.size!, sink!).catch((error: unknown) => {
    sink!.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  });
  await Promise.all([copied, written]);
}

/** The ustar header for tar-stream, plus the PAX records for whatever does not fit it exactly. */
function tarHeader(record: TarRecord): { header: TarHeader; pax: Buffer[] } {
  const { entry } = record;
  const pax: Buffer[] = [];
  const isMarker = entry.type === 'whiteout' || entry.type === 'opaque';
  const name = entry.type === 'directory' ? `${record.path}/` : record.path;
  const header: TarHeader = {
    name: fitName(name, 'path', pax),
    type: TAR_TYPES[entry.type],
    mode: FILE_TYPE_BIT | (isMarker ? 0 : entry.mode & 0o7777),
    uid: isMarker ? 0 : fitNumber(entry.uid, MAX_USTAR_ID, 'uid', pax),
    gid: isMarker ? 0 : fitNumber(entry.gid, MAX_USTAR_ID, 'gid', pax),
    size: entry.type === 'file' ? fitNumber(entry.size!, MAX_USTAR_SIZE, 'size', pax, entry.size!) : 0,
    mtime: new Date(fitNumber(record.mtime, MAX_USTAR_MTIME, 'mtime', pax) * 1000),
  };
  if (entry.type === 'symlink' || entry.type === 'hardlink') header.linkname = fitName(entry.linkTarget!, 'linkpath', pax);
  if (entry.type === 'char' || entry.type === 'block') {
    header.devmajor = entry.devMajor ?? 0;
    header.devminor = entry.devMinor ?? 0;
  }
  if (!isMarker) {
    const names = Object.keys(entry.xattrs ?? {}).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const xattr of names) pax.push(paxRecord(`SCHILY.xattr.${xattr}`, entry.xattrs![xattr]));
  }
  return { header, pax };
}

/** `name` if it fits a ustar name field as is; otherwise a PAX record carries it and readers without PAX get an ASCII stand-in. */
function fitName(name: string, key: 'path' | 'linkpath', pax: Buffer[]): string {
  const ascii = /^[\x01-\x7f]*$/.test(name);
  if (ascii && name.length <= MAX_USTAR_NAME) return name;
  pax.push(paxRecord(key, name));
  const slash = name.endsWith('/') ? '/' : '';
  return name.replace(/[^\x01-\x7f]/gu, '_').slice(0, MAX_USTAR_NAME - slash.length).replace(/\/+$/, '') + slash;
}

/** `value` if tar-stream can write it into the ustar field; otherwise a PAX record and `fallback` for the field. */
function fitNumber(value: number, max: number, key: string, pax: Buffer[], fallback = 0): number {
  if (value >= 0 && value <= max) return value;
  pax.push(paxRecord(key, String(value)));
  return fallback;
}

/** A PAX record, `<length> <key>=<value>\n`, where length counts the whole record including its own digits. */
function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + String(body.length).length;
  while (body.length + String(length).length !== length) length = body.length + String(length).length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/**
 * A PAX extended header ('x') and its records, padded to whole blocks. Written by hand because
 * tar-stream encodes PAX values as text, which would mangle binary xattr values.
 */
function paxHeaderBlock(records: Buffer[], mtime: Date): Buffer {
  const data = Buffer.concat(records);
  const header = Buffer.alloc(BLOCK);
  header.write('PaxHeader', 0, 'ascii');
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, data.length);
  writeOctal(header, 136, 12, mtime.getTime() / 1000);
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

/** Copies a regular file's contents into its tar entry, failing if the file's length is not `size`. */
async function copyContents(path: string, open: (() => Readable) | undefined, size: number, sink: Sink): Promise<void> {
  let copied = 0;
  if (open) {
    for await (const chunk of open()) {
      const bytes = chunk as Buffer;
      copied += bytes.length;
      if (copied > size) throw sizeChanged(path, size, `more than ${size}`);
      if (!sink.write(bytes)) await drainedOrClosed(sink);
      if (sink.destroyed) return;
    }
  }
  if (copied !== size) throw sizeChanged(path, size, String(copied));
  sink.end(null);
}

function sizeChanged(path: string, size: number, found: string): TsbuildError {
  return new TsbuildError('TAR_SIZE', `${JSON.stringify(path)} should have ${size} bytes but has ${found}; did it change while the layer was written?`);
}
