import type { Readable } from 'node:stream';
import type { Digest } from './types.js';

/** What one tar entry of a layer is. `whiteout` deletes `path`; `opaque` empties the directory `path`. */
export type EntryType =
  | 'file'
  | 'directory'
  | 'symlink'
  | 'hardlink'
  | 'fifo'
  | 'char'
  | 'block'
  | 'whiteout'
  | 'opaque';

/**
 * One filesystem change of a layer, described independently of the disk it came from, so that
 * ownership and modes can be set by the builder (for example `--chown`) without touching files.
 */
export interface LayerEntry {
  /** Root-relative POSIX path without a leading slash or `.`/`..` components, e.g. `usr/bin/sh`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (mask 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in seconds since the epoch. */
  mtime: number;
  /** Byte length of a regular file's contents. */
  size?: number;
  /** Symlink target as written, or, for a hardlink, the layer-relative path it links to. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, Buffer>;
  /** Opens a fresh stream of a regular file's contents; may be called more than once. */
  open?: () => Readable;
  /**
   * Opens a regular file's contents for synchronous reading and returns its descriptor, which the
   * caller closes; readers prefer it to `open` where both are given, as it costs no stream.
   */
  openFile?: () => number;
  /**
   * The SHA-256 and length of a regular file's contents, read now or remembered from an earlier
   * read of the same unchanged file; checksums prefer it to reading the contents themselves.
   */
  contentDigest?: () => { digest: Digest; size: number };
  /**
   * The file on disk a regular file's contents come from, which an unpacker may hard-link instead
   * of writing the contents where its metadata is the entry's (see ApplyOptions.linkSources).
   */
  sourcePath?: string;
}
