/**
 * The checksum of what a COPY/ADD writes: every layer entry's path, type, mode, owner, size, link
 * target, device numbers, xattrs and the SHA-256 of its contents. Never the mtime, and never where
 * the files came from, so the same files from another checkout or another stage give the same sum.
 */
import { closeSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../layers/canonical-json.js';
import { digestOfStream, sha256Digest } from '../../layers/digest.js';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import type { Digest } from '../../layers/types.js';

export interface ContentChecksum {
  /** Over every entry's own digest, in path order. */
  readonly digest: Digest;
  /** Each entry's path to its own digest, in path order. */
  readonly files: ReadonlyMap<string, Digest>;
}

/** Files hashed at the same time: small files are bound by opening them, not by reading. */
const PARALLEL_READS = 8;

/** Checksums `entries` (which must have distinct paths), streaming each file's contents once. */
export async function contentChecksum(entries: readonly LayerEntry[]): Promise<ContentChecksum> {
  const sorted = [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.path === sorted[i - 1]!.path) throw new TsbuildError('INTERNAL', `two layer entries for ${sorted[i]!.path}`);
  }
  const digests = new Array<Digest>(sorted.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < sorted.length) {
      const i = next++;
      digests[i] = await entryDigest(sorted[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_READS, sorted.length) }, worker));
  return {
    digest: sha256Digest(canonicalJson(digests)),
    files: new Map(sorted.map((entry, i) => [entry.path, digests[i]!])),
  };
}

async function entryDigest(entry: LayerEntry): Promise<Digest> {
  const xattrs: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(entry.xattrs ?? {})) xattrs[name] = value.toString('base64');
  return sha256Digest(
    canonicalJson({
      path: entry.path,
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: entry.type === 'file' ? (entry.size ?? 0) : null,
      linkTarget: entry.linkTarget ?? null,
      device: entry.type === 'char' || entry.type === 'block' ? [entry.devMajor ?? 0, entry.devMinor ?? 0] : null,
      xattrs,
      contents: entry.type === 'file' ? await contentsDigest(entry) : null,
    }),
  );
}

/** The SHA-256 of a regular file's contents, read once; its length must be the entry's size. */
async function contentsDigest(entry: LayerEntry): Promise<string> {
  const size = entry.size ?? 0;
  if (entry.open === undefined && entry.openFile === undefined && entry.contentDigest === undefined) {
    if (size > 0) throw new TsbuildError('INTERNAL', `layer entry ${entry.path} has a size but no contents`);
    return sha256Digest('').slice('sha256:'.length);
  }
  let read;
  try {
    read = entry.contentDigest ? entry.contentDigest() : entry.openFile ? digestOfFile(entry.openFile) : await digestOfStream(entry.open!());
  } catch (err) {
    throw new TsbuildError('SOURCE_READ', `cannot read ${entry.path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (read.size !== size) throw new TsbuildError('SOURCE_CHANGED', `${entry.path} changed while it was read (${size} bytes expected, ${read.size} read)`);
  return read.digest.slice('sha256:'.length);
}

/** One buffer for every synchronous read: hashing copies nothing out of it. */
const scratch = Buffer.allocUnsafe(1024 * 1024);

/** The SHA-256 and length of a file read with synchronous calls into the shared buffer. */
function digestOfFile(openFile: () => number): { digest: Digest; size: number } {
  const fd = openFile();
  try {
    const hash = createHash('sha256');
    let size = 0;
    for (let read; (read = readSync(fd, scratch, 0, scratch.length, null)) > 0; size += read) hash.update(scratch.subarray(0, read));
    return { digest: `sha256:${hash.digest('hex')}`, size };
  } finally {
    closeSync(fd);
  }
}
