/** The files of the local build cache, read and written outside the store's lock logic. */
import { copyFile, link, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { digestOfPath, VerifyingStream } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode, lstatOrUndefined, openWriteStream, readdirIfExists, removeIfExists } from '../../layers/fs-util.js';
import type { Layer } from '../../layers/image.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import type { EvictionCandidate } from './local-store-eviction.js';
import { asCacheRecord, type CacheRecord } from './local-store-record.js';

const RECORD_NAME = /^([0-9a-f]{64})\.json$/;
const BLOB_NAME = /^[0-9a-f]{64}$/;

/** A record file as found on disk; `record` is undefined when the file does not parse. */
export interface RecordFile {
  path: string;
  size: number;
  lastUsedMs: number;
  record: CacheRecord | undefined;
}

export interface StoreFiles {
  records: RecordFile[];
  inputs: EvictionCandidate[];
  blobs: Map<Digest, number>;
}

/** The record at `path`, or undefined when it is missing or malformed. */
export async function readRecord(path: string): Promise<CacheRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    return asCacheRecord(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * Writes `text` to `path` all at once: to the temp file `temp`, then renamed into place. Not synced:
 * the store's JSON files are only ever read through `JSON.parse` and a shape check, so what a crash
 * can leave of one (empty, cut short, zeros) reads as absent, and the entry is a miss.
 */
export async function writeAtomic(path: string, text: string, temp: string): Promise<void> {
  try {
    await writeFile(temp, text, { flag: 'wx' });
    await rename(temp, path);
  } finally {
    await removeIfExists(temp);
  }
}

/**
 * Puts the layer's blob at `temp`, verified against `descriptor`: a hard link (or a copy) of its
 * local file, hashed, or else its stream, checked as it is written. A local file `hashed` already
 * (this build wrote it and hashed it as it did) is only checked for size.
 */
export async function importLayerBlob(layer: Layer, descriptor: Descriptor, temp: string, hashed: boolean): Promise<void> {
  try {
    const source = await layer.localPath?.();
    if (source === undefined) {
      await pipeline(await layer.compressed(), new VerifyingStream(descriptor.digest, descriptor.size), await openWriteStream(temp, { flags: 'wx' }));
      return;
    }
    // Another filesystem, or a file this user may not link: copy instead.
    await link(source, temp).catch(() => copyFile(source, temp));
    const { digest, size } = hashed ? { digest: descriptor.digest, size: (await stat(temp)).size } : await digestOfPath(temp);
    if (digest !== descriptor.digest || size !== descriptor.size) {
      throw new TsbuildError('DIGEST_MISMATCH', `layer blob ${source} has digest ${digest} and ${size} bytes, not ${descriptor.digest} and ${descriptor.size} bytes`);
    }
  } catch (error) {
    await removeIfExists(temp);
    throw error;
  }
}

/** Every record, remembered inputs file and blob of the store at `dir`. */
export async function scanStore(dir: string): Promise<StoreFiles> {
  const records: RecordFile[] = [];
  for (const name of await readdirIfExists(join(dir, 'records'))) {
    if (!RECORD_NAME.test(name)) continue;
    const path = join(dir, 'records', name);
    const info = await lstatOrUndefined(path);
    if (info === undefined) continue;
    records.push({ path, size: info.size, lastUsedMs: info.mtimeMs, record: await readRecord(path) });
  }
  const inputs: EvictionCandidate[] = [];
  for (const name of await readdirIfExists(join(dir, 'inputs'))) {
    const path = join(dir, 'inputs', name);
    const info = await lstatOrUndefined(path);
    if (info?.isFile()) inputs.push({ path, size: info.size, lastUsedMs: info.mtimeMs });
  }
  const blobs = new Map<Digest, number>();
  for (const name of await readdirIfExists(join(dir, 'blobs', 'sha256'))) {
    if (!BLOB_NAME.test(name)) continue;
    const info = await lstatOrUndefined(join(dir, 'blobs', 'sha256', name));
    if (info?.isFile()) blobs.set(`sha256:${name}`, info.size);
  }
  return { records, inputs, blobs };
}
