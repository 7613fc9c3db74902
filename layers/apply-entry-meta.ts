/** What one layer tar entry says about itself: its checked name, and its owner, mode and mtime. */
import type { Header } from 'tar-stream';
import { TsbuildError } from './errors.js';

/** The tar reader's header, with the PAX records it attaches. */
export type TarHeader = Omit<Header, 'pax'> & { pax?: Record<string, string> | null };

/** Linux's limits: NAME_MAX bytes for one path component, PATH_MAX (less its NUL) for a path. */
const NAME_MAX = 255;
const PATH_MAX = 4095;

/**
 * Refuses an entry name or link target the file system cannot take: with a NUL (possible in PAX
 * and GNU long names), a component longer than NAME_MAX or a whole longer than PATH_MAX.
 */
export function checkEntryPath(value: string, what: 'name' | 'link target'): void {
  const shown = JSON.stringify(value.length > 100 ? `${value.slice(0, 60)}...` : value);
  const invalid = (reason: string): TsbuildError => new TsbuildError('INVALID_LAYER', `entry ${what} ${shown} ${reason}`);
  if (value.includes('\0')) throw invalid('contains NUL');
  if (Buffer.byteLength(value) > PATH_MAX) throw invalid(`is longer than ${PATH_MAX} bytes`);
  if (value.split('/').some((part) => Buffer.byteLength(part) > NAME_MAX)) throw invalid(`has a component longer than ${NAME_MAX} bytes`);
}

/** Metadata of one entry, read from its tar header (PAX values preferred). */
export interface Meta {
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, fractional when PAX gives them. */
  mtime: number;
}

export function metaOf(header: TarHeader): Meta {
  const pax = header.pax ?? {};
  return {
    mode: header.mode & 0o7777,
    uid: paxNumber(pax.uid) ?? header.uid,
    gid: paxNumber(pax.gid) ?? header.gid,
    mtime: paxNumber(pax.mtime) ?? header.mtime.getTime() / 1000,
  };
}

function paxNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}
