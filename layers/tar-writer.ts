import { closeSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ChunkFiller, type ChunkPool } from './chunk-filler.js';
import type { LayerEntry } from './entry.js';
import { TsbuildError } from './errors.js';
import { BLOCK, paxHeaderBlock, paxRecord, writeUstarHeader, type TarType, type UstarFields } from './tar-header.js';

export interface TarOptions {
  /** When set, every mtime later than this (seconds since the epoch) is written as this. */
  sourceDateEpoch?: number;
  /** Where the output chunks come from; the consumers give each one back there when done with it. */
  pool?: ChunkPool;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_NAME = '.wh..wh..opq';
/** Largest values that fit the ustar fields; larger ones go into PAX records. */
const MAX_USTAR_ID = 0o777777;
const MAX_USTAR_SIZE = 0o77777777777;
const MAX_USTAR_MTIME = 2 ** 31 - 1;
const MAX_USTAR_NAME = 100;
/** Two zero blocks end the archive. */
const END_OF_ARCHIVE = 2 * BLOCK;

const TAR_TYPES: Record<LayerEntry['type'], TarType> = {
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
  /**
   * Ordered by its UTF-8 bytes (`compareKeys`): parents before children, whiteouts before their
   * siblings, then bytewise by component. A string, not its encoding: a Buffer for each of tens of
   * thousands of entries costs several times the memory.
   */
  key: string;
  mtime: number;
}

/**
 * Streams `entries` as a deterministic tar: the same entries, in any order, give the same bytes.
 * Invalid entries, and regular files whose length differs from `size`, fail the stream.
 *
 * The archive is produced in large chunks that are filled in place: headers are written straight
 * into them and files with `openFile` are read into them with synchronous calls, so a layer of many
 * small files costs a few system calls per file and no stream or buffer of its own. Nothing is
 * read before the consumer asks for the next chunk.
 */
export function layerTar(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  options: TarOptions = {},
): Readable {
  return Readable.from(tarChunks(entries, options), { objectMode: false, highWaterMark: 1 });
}

/**
 * The same tar as `layerTar`, made at once in memory: for a small layer, where a stream's
 * per-layer cost outweighs the work. Every non-empty file must have `openFile`.
 */
export function layerTarBytes(entries: readonly LayerEntry[], options: Pick<TarOptions, 'sourceDateEpoch'> = {}): Buffer {
  const out = new ChunkFiller();
  const chunks: Buffer[] = [];
  for (const record of sortedRecords(entries, checkedEpoch(options.sourceDateEpoch))) {
    if (readsStream(record.entry)) throw new TsbuildError('INTERNAL', `layer entry ${JSON.stringify(record.path)} has no descriptor to read in memory`);
    chunks.push(...recordChunks(out, record));
  }
  out.zeros(END_OF_ARCHIVE);
  chunks.push(...out.takeAll());
  return Buffer.concat(chunks);
}

async function* tarChunks(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, options: TarOptions): AsyncGenerator<Buffer> {
  const epoch = checkedEpoch(options.sourceDateEpoch);
  const all: LayerEntry[] = [];
  for await (const entry of entries) all.push(entry);
  const out = new ChunkFiller(options.pool);
  for (const record of sortedRecords(all, epoch)) {
    if (readsStream(record.entry)) {
      writeHeaders(out, record);
      yield* fileFromStream(out, record.path, record.entry.open!, record.entry.size!);
      out.zeros(padding(record.entry.size!));
      yield* out.takeFull();
    } else {
      yield* recordChunks(out, record);
    }
  }
  out.zeros(END_OF_ARCHIVE);
  yield* out.takeAll();
}

function checkedEpoch(epoch: number | undefined): number | undefined {
  if (epoch !== undefined && !Number.isSafeInteger(epoch)) {
    throw new TsbuildError('SOURCE_DATE_EPOCH', `source date epoch must be an integer number of seconds, got ${epoch}`);
  }
  return epoch;
}

/** The entries as records in archive order, checked. */
function sortedRecords(entries: readonly LayerEntry[], epoch: number | undefined): TarRecord[] {
  const records = entries.map((entry) => toRecord(entry, epoch));
  records.sort((a, b) => compareKeys(a.key, b.key));
  checkUnique(records);
  checkHardlinks(records);
  return records;
}

/** Whether a regular file's contents come only as a stream. */
function readsStream(entry: LayerEntry): boolean {
  return entry.type === 'file' && entry.openFile === undefined && entry.open !== undefined;
}

/** A record's headers, then any contents read through `openFile` (whiteout markers are empty files) and their padding. */
function* recordChunks(out: ChunkFiller, record: TarRecord): Generator<Buffer> {
  writeHeaders(out, record);
  const { entry } = record;
  if (entry.type === 'file') {
    if (entry.openFile) yield* fileFromDescriptor(out, record.path, entry.openFile, entry.size!);
    out.zeros(padding(entry.size!));
  }
  yield* out.takeFull();
}

/** Zero bytes after `size` bytes of contents up to the next tar block. */
function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Reads a file's `size` bytes straight into the output chunks, failing if it has more or fewer. */
function* fileFromDescriptor(out: ChunkFiller, path: string, openFile: () => number, size: number): Generator<Buffer> {
  const fd = openFile();
  try {
    let left = size;
    while (left > 0) {
      const read = out.readFrom(fd, left);
      if (read === 0) throw sizeChanged(path, size, String(size - left));
      left -= read;
      yield* out.takeFull();
    }
    if (readSync(fd, oneByte, 0, 1, null) !== 0) throw sizeChanged(path, size, `more than ${size}`);
  } finally {
    closeSync(fd);
  }
}

const oneByte = Buffer.alloc(1);

/** Copies a file's stream into the output chunks, failing if its length is not `size`. */
async function* fileFromStream(out: ChunkFiller, path: string, open: () => Readable, size: number): AsyncGenerator<Buffer> {
  let copied = 0;
  for await (const chunk of open()) {
    const bytes = chunk as Buffer;
    copied += bytes.length;
    if (copied > size) throw sizeChanged(path, size, `more than ${size}`);
    out.append(bytes);
    yield* out.takeFull();
  }
  if (copied !== size) throw sizeChanged(path, size, String(copied));
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
    key: keyParts.join('\x00'),
    mtime: epoch === undefined ? mtime : Math.min(mtime, epoch),
  };
}

/** Orders two keys as `Buffer.compare` orders their UTF-8 encodings. */
function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Below the surrogates, UTF-16 code units order as the UTF-8 bytes do.
    if (x < 0xd800 && y < 0xd800) return x - y;
    return Buffer.compare(Buffer.from(a), Buffer.from(b));
  }
  // A shared prefix ending inside a surrogate pair need not encode as a shared prefix.
  const last = length > 0 ? a.charCodeAt(length - 1) : 0;
  if (last >= 0xd800 && last < 0xdc00) return Buffer.compare(Buffer.from(a), Buffer.from(b));
  return a.length - b.length;
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
      if (entry.size! > 0 && entry.open === undefined && entry.openFile === undefined) fail('a non-empty file needs contents');
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
    if (compareKeys(sorted[i].key, sorted[i - 1].key) === 0) {
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

/** The tar blocks of one record: its PAX header, if any, then its ustar header. */
function writeHeaders(out: ChunkFiller, record: TarRecord): void {
  const { fields, pax } = tarHeader(record);
  if (pax.length > 0) out.append(paxHeaderBlock(pax, fields.mtime));
  const [block, at] = out.reserveBlock();
  writeUstarHeader(block, at, fields);
}

/** The ustar fields, plus the PAX records for whatever does not fit them exactly. */
function tarHeader(record: TarRecord): { fields: UstarFields; pax: Buffer[] } {
  const { entry } = record;
  const pax: Buffer[] = [];
  const isMarker = entry.type === 'whiteout' || entry.type === 'opaque';
  const name = entry.type === 'directory' ? `${record.path}/` : record.path;
  const fields: UstarFields = {
    name: fitName(name, 'path', pax),
    type: TAR_TYPES[entry.type],
    mode: isMarker ? 0 : entry.mode & 0o7777,
    uid: isMarker ? 0 : fitNumber(entry.uid, MAX_USTAR_ID, 'uid', pax),
    gid: isMarker ? 0 : fitNumber(entry.gid, MAX_USTAR_ID, 'gid', pax),
    size: entry.type === 'file' ? fitNumber(entry.size!, MAX_USTAR_SIZE, 'size', pax, entry.size!) : 0,
    mtime: fitNumber(record.mtime, MAX_USTAR_MTIME, 'mtime', pax),
  };
  if (entry.type === 'symlink' || entry.type === 'hardlink') fields.linkname = fitName(entry.linkTarget!, 'linkpath', pax);
  if (entry.type === 'char' || entry.type === 'block') {
    fields.devmajor = entry.devMajor ?? 0;
    fields.devminor = entry.devMinor ?? 0;
  }
  if (!isMarker) {
    const names = Object.keys(entry.xattrs ?? {}).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const xattr of names) pax.push(paxRecord(`SCHILY.xattr.${xattr}`, entry.xattrs![xattr]));
  }
  return { fields, pax };
}

/** `name` if it fits a ustar name field as is; otherwise a PAX record carries it and readers without PAX get an ASCII stand-in. */
function fitName(name: string, key: 'path' | 'linkpath', pax: Buffer[]): string {
  const ascii = /^[\x01-\x7f]*$/.test(name);
  if (ascii && name.length <= MAX_USTAR_NAME) return name;
  pax.push(paxRecord(key, name));
  const slash = name.endsWith('/') ? '/' : '';
  return name.replace(/[^\x01-\x7f]/gu, '_').slice(0, MAX_USTAR_NAME - slash.length).replace(/\/+$/, '') + slash;
}

/** `value` if it fits the ustar field; otherwise a PAX record and `fallback` for the field. */
function fitNumber(value: number, max: number, key: string, pax: Buffer[], fallback = 0): number {
  if (value >= 0 && value <= max) return value;
  pax.push(paxRecord(key, String(value)));
  return fallback;
}

function sizeChanged(path: string, size: number, found: string): TsbuildError {
  return new TsbuildError('TAR_SIZE', `${JSON.stringify(path)} should have ${size} bytes but has ${found}; did it change while the layer was written?`);
}
