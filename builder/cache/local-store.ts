/**
 * The local build cache: step records and their layer blobs in one directory, shared by the
 * concurrent builds of a machine.
 *
 *   <dir>/oci-layout, index.json   an OCI layout (its index stays empty) that holds the blobs
 *   <dir>/blobs/sha256/<hex>       layer blobs, by digest
 *   <dir>/records/<hex>.json       the CacheRecord of step key sha256:<hex>; its mtime is its last use
 *   <dir>/inputs/<hex>.json        the named inputs of the last build of a step, by step identity hash
 *   <dir>/pins/<owner>             blobs that `get` handed to a live build
 *   <dir>/store.lock               serializes committing puts, eviction and pruning
 *   <dir>/.tmp-<owner>             files being written
 *
 * Invariants: a record appears (by rename) only while its blob is in place, both under the lock;
 * blobs are removed only under the lock, only when no record refers to them and no live build has
 * pinned them; `get` pins a blob before checking that its record still refers to it.
 */
import { createReadStream, mkdirSync } from 'node:fs';
import { readFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode, lstatOrUndefined, removeIfExists } from '../../layers/fs-util.js';
import { blobLayer } from '../../layers/lazy-image.js';
import { withLockFile } from '../../layers/layout-lock.js';
import { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import { defaultCacheDir } from '../locations.js';
import { checkEntry, type CacheEntry, type CacheStore } from './cache-store.js';
import { planEviction, type EvictionCandidate } from './local-store-eviction.js';
import { importLayerBlob, readRecord, scanStore, writeAtomic } from './local-store-files.js';
import { BlobPins, livePins, ownedName, removeDeadTemps, TEMP_PREFIX } from './local-store-owners.js';
import { asCacheRecord, type CacheRecord } from './local-store-record.js';

export type { CacheRecord } from './local-store-record.js';

export interface LocalCacheStoreOptions {
  /** How long to wait for another build holding the store lock (default 5 minutes). */
  lockTimeoutMs?: number;
  /** How many steps' last inputs are remembered (default 1000); older ones go at `enforceLimit`. */
  maxInputEntries?: number;
  /**
   * Told, once, that the store's file system is full. The store then stops writing for as long as
   * it is open: lookups miss and results are not kept, and the build goes on without its cache.
   */
  onFull?: (message: string) => void;
}

export interface PutOptions {
  /**
   * The layer's local file was written by this build, which hashed it as it wrote it: it is
   * brought in with a check of its size only, not read and hashed again.
   */
  layerHashed?: boolean;
}

export interface EnforceLimitResult {
  /** Records evicted, including broken ones. */
  evictedRecords: number;
  freedBytes: number;
  /** The store's size afterwards; above the limit only if live builds pin more than it allows. */
  totalBytes: number;
}

export interface CacheUsage {
  records: number;
  blobs: number;
  bytes: number;
}

/** `<cache dir>/build-cache`, the default local build cache. */
export function defaultBuildCacheDir(env: NodeJS.ProcessEnv): string {
  return join(defaultCacheDir(env), 'build-cache');
}

export class LocalCacheStore implements CacheStore {
  private readonly pins: BlobPins;
  private readonly lockTimeoutMs: number;
  private readonly maxInputEntries: number;
  private readonly onFull: ((message: string) => void) | undefined;
  /** Set once a write found no space: nothing more is written or handed out. */
  private full = false;
  /** Writes not finished yet: `release` waits for them, so their source files outlive them. */
  private readonly writing = new Set<Promise<unknown>>();
  /** The end of the queue of this instance's sections under the store lock. */
  private lockQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly layout: OciLayout,
    options: LocalCacheStoreOptions,
  ) {
    this.pins = new BlobPins(join(dir, 'pins'));
    this.lockTimeoutMs = options.lockTimeoutMs ?? 5 * 60_000;
    this.maxInputEntries = options.maxInputEntries ?? 1000;
    this.onFull = options.onFull;
  }

  /** Opens the store at `dir`, creating it if needed; a non-empty directory that is not one is refused. */
  static async open(dir: string, options: LocalCacheStoreOptions = {}): Promise<LocalCacheStore> {
    let layout: OciLayout;
    try {
      layout = await OciLayout.open(dir, { create: true });
    } catch (error) {
      if (!(error instanceof TsbuildError)) throw error;
      throw new TsbuildError('CACHE_DIR', `cannot use ${dir} as a build cache: ${error.message}`, { cause: error });
    }
    mkdirSync(join(layout.dir, 'records'), { recursive: true });
    mkdirSync(join(layout.dir, 'inputs'), { recursive: true });
    return new LocalCacheStore(layout.dir, layout, options);
  }

  get name(): string {
    return this.dir;
  }

  /** Where a cached blob is read from (valid for a blob of a record `get` returned). */
  blobPath(digest: Digest): string {
    return this.layout.path(digest);
  }

  /**
   * The record cached under `key`, or undefined on a miss. A record whose blob is missing or has
   * the wrong size is a miss and is removed. A hit counts as a use, and its blob stays in place for
   * as long as this store instance is open (until `release`), whatever other builds evict.
   */
  async get(key: Digest): Promise<CacheEntry | undefined> {
    const path = this.recordPath(key);
    const record = this.full ? undefined : await readRecord(path);
    if (record === undefined) return undefined;
    if (record.layer !== undefined) {
      const descriptor = record.layer.descriptor;
      if (!(await this.unlessFull(() => this.pins.pin(descriptor.digest)))) return undefined;
      // Re-read after pinning: an eviction that drops this record from now on sees the pin.
      const current = await readRecord(path);
      if (current?.layer?.descriptor.digest !== descriptor.digest) return undefined;
      if (!(await this.blobIntact(descriptor))) {
        await this.dropBroken(path);
        return undefined;
      }
    }
    await this.markUsed(key);
    return { record, ...(record.layer !== undefined && { layer: this.layerOf(record.layer) }) };
  }

  /** A cached layer: its blob is this store's file. */
  private layerOf({ descriptor, diffId }: NonNullable<CacheRecord['layer']>) {
    const path = this.blobPath(descriptor.digest);
    return blobLayer({ descriptor, diffId, open: async () => createReadStream(path), localPath: async () => path });
  }

  /**
   * Caches `entry` under `key`. A record with a layer needs the layer, whose blob is brought into
   * the store (its local file hard-linked, or copied when linking fails) and checked against the
   * descriptor's digest and size; the caller must not modify that file in place afterwards. An
   * intact record already under `key` is kept (first writer wins) and only marked used.
   */
  async put(key: Digest, entry: CacheEntry, options: PutOptions = {}): Promise<void> {
    await this.tracked(this.unlessFull(() => this.putRecord(key, entry, options.layerHashed ?? false)));
  }

  private async putRecord(key: Digest, { record, layer }: CacheEntry, layerHashed: boolean): Promise<void> {
    const path = this.recordPath(key);
    if (asCacheRecord(record) === undefined) throw new TsbuildError('CACHE_RECORD', `malformed cache record for ${key}`);
    checkEntry(key, { record, ...(layer !== undefined && { layer }) });
    const descriptor = record.layer?.descriptor;
    const importBlob = async (): Promise<string> => {
      const temp = this.tempPath();
      await importLayerBlob(layer!, descriptor!, temp, layerHashed);
      return temp;
    };
    let temp: string | undefined;
    try {
      if (descriptor !== undefined && !(await this.blobIntact(descriptor))) temp = await importBlob();
      await this.locked(async () => {
        const existing = await readRecord(path);
        if (existing !== undefined && (existing.layer === undefined || (await this.blobIntact(existing.layer.descriptor)))) {
          await this.markUsed(key);
          return;
        }
        if (descriptor !== undefined && !(await this.blobIntact(descriptor))) {
          // Evicted since the check above, or damaged: bring it in now, under the lock.
          temp ??= await importBlob();
          await removeIfExists(this.blobPath(descriptor.digest));
        }
        if (temp !== undefined) await this.layout.commit(temp, (descriptor as Descriptor).digest);
        temp = undefined;
        await writeAtomic(path, JSON.stringify(record), this.tempPath());
      });
    } finally {
      if (temp !== undefined) await removeIfExists(temp);
    }
  }

  /** Records a use of `key`'s record at `at`, for least-recently-used eviction. */
  async markUsed(key: Digest, at: Date = new Date()): Promise<void> {
    try {
      await utimes(this.recordPath(key), at, at);
    } catch (error) {
      if (!isErrnoCode(error, 'ENOENT')) throw error;
    }
  }

  /** The named inputs recorded for the last build of the step `stepIdentity`, if any. */
  async lastInputs(stepIdentity: string): Promise<Record<string, string> | undefined> {
    let value: unknown;
    try {
      value = JSON.parse(await readFile(this.inputsPath(stepIdentity), 'utf8'));
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT') || error instanceof SyntaxError) return undefined;
      throw error;
    }
    const { step, inputs } = (value ?? {}) as { step?: unknown; inputs?: unknown };
    if (step !== stepIdentity || typeof inputs !== 'object' || inputs === null) return undefined;
    return inputs as Record<string, string>;
  }

  /** Remembers `inputs` as those of the last build of the step `stepIdentity`, replacing earlier ones. */
  async recordInputs(stepIdentity: string, inputs: Record<string, string>): Promise<void> {
    await this.tracked(this.unlessFull(() => writeAtomic(this.inputsPath(stepIdentity), JSON.stringify({ step: stepIdentity, inputs }), this.tempPath())));
  }

  /** `write`, counted among the writes `release` waits for. */
  private async tracked<T>(write: Promise<T>): Promise<T> {
    this.writing.add(write);
    try {
      return await write;
    } finally {
      this.writing.delete(write);
    }
  }

  /**
   * Runs a write unless the store is full; when the write finds no space, the store becomes full.
   * Returns whether the write ran to the end.
   */
  private async unlessFull(write: () => Promise<void>): Promise<boolean> {
    if (this.full) return false;
    try {
      await write();
      return true;
    } catch (error) {
      if (!isErrnoCode(error, 'ENOSPC') && !isErrnoCode(error, 'EDQUOT')) throw error;
      this.full = true;
      this.onFull?.(`build cache ${this.dir} is full (no space left on device): this build goes on without it`);
      return false;
    }
  }

  /**
   * Shrinks the store to at most `maxBytes`: drops broken records, the oldest remembered inputs
   * beyond their count limit, then records least recently used first, and finally every blob that
   * no remaining record refers to and no live build has pinned.
   */
  async enforceLimit(maxBytes: number): Promise<EnforceLimitResult> {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new TsbuildError('BAD_FLAG', `invalid cache size limit ${maxBytes}: expected a whole number of bytes`);
    }
    return this.locked(async () => {
      await removeDeadTemps(this.dir);
      const files = await scanStore(this.dir);
      const broken: EvictionCandidate[] = [];
      const records: EvictionCandidate[] = [];
      for (const file of files.records) {
        const layer = file.record?.layer;
        const intact = file.record !== undefined && (layer === undefined || files.blobs.get(layer.descriptor.digest) === layer.descriptor.size);
        (intact ? records : broken).push({ path: file.path, size: file.size, lastUsedMs: file.lastUsedMs, blob: layer?.descriptor.digest });
      }
      const newestInputs = [...files.inputs].sort((a, b) => b.lastUsedMs - a.lastUsedMs);
      const excessInputs = newestInputs.slice(this.maxInputEntries);
      const candidates = [...records, ...newestInputs.slice(0, this.maxInputEntries)];
      const evicted = new Set([...broken, ...excessInputs, ...planEviction(candidates, files.blobs, maxBytes)]);

      let freedBytes = 0;
      for (const entry of evicted) {
        await removeIfExists(entry.path);
        freedBytes += entry.size;
      }
      const kept = candidates.filter((entry) => !evicted.has(entry));
      const referenced = new Set(kept.flatMap((entry) => (entry.blob === undefined ? [] : [entry.blob])));
      // Read after the records are gone: a `get` that still saw one of them has pinned its blob by now.
      const pinned = await livePins(join(this.dir, 'pins'));
      let totalBytes = kept.reduce((sum, entry) => sum + entry.size, 0);
      for (const [digest, size] of files.blobs) {
        if (referenced.has(digest) || pinned.has(digest)) {
          totalBytes += size;
        } else {
          await removeIfExists(this.blobPath(digest));
          freedBytes += size;
        }
      }
      const evictedRecords = broken.length + records.filter((entry) => evicted.has(entry)).length;
      return { evictedRecords, freedBytes, totalBytes };
    });
  }

  /** Empties the store (blobs pinned by live builds stay until they finish); returns what went. */
  async prune(): Promise<{ records: number; bytes: number }> {
    return this.locked(async () => {
      await removeDeadTemps(this.dir);
      const files = await scanStore(this.dir);
      let bytes = 0;
      for (const entry of [...files.records, ...files.inputs]) {
        await removeIfExists(entry.path);
        bytes += entry.size;
      }
      const pinned = await livePins(join(this.dir, 'pins'));
      for (const [digest, size] of files.blobs) {
        if (pinned.has(digest)) continue;
        await removeIfExists(this.blobPath(digest));
        bytes += size;
      }
      return { records: files.records.length, bytes };
    });
  }

  /** What the store holds now: record and blob counts and the bytes of records, inputs and blobs. */
  async usage(): Promise<CacheUsage> {
    const files = await scanStore(this.dir);
    let bytes = 0;
    for (const entry of [...files.records, ...files.inputs]) bytes += entry.size;
    for (const size of files.blobs.values()) bytes += size;
    return { records: files.records.length, blobs: files.blobs.size, bytes };
  }

  /**
   * Lets eviction remove the blobs this instance's hits returned; call when the build no longer
   * reads them. Waits first for the writes still running (their failures are their callers').
   */
  async release(): Promise<void> {
    await Promise.allSettled(this.writing);
    await this.pins.release();
  }

  private recordPath(key: Digest): string {
    return join(this.dir, 'records', `${parseDigest(key).slice('sha256:'.length)}.json`);
  }

  private inputsPath(stepIdentity: string): string {
    return join(this.dir, 'inputs', `${sha256Digest(stepIdentity).slice('sha256:'.length)}.json`);
  }

  private tempPath(): string {
    return join(this.dir, TEMP_PREFIX + ownedName());
  }

  /** Runs `action` holding the store lock; this instance's own sections queue here rather than poll the lock file. */
  private locked<T>(action: () => Promise<T>): Promise<T> {
    const run = this.lockQueue.then(() => withLockFile(join(this.dir, 'store.lock'), action, { timeoutMs: this.lockTimeoutMs }));
    this.lockQueue = run.catch(() => undefined);
    return run;
  }

  /** Whether the blob is in the store with the descriptor's size (contents are checked when they come in). */
  private async blobIntact(descriptor: Descriptor): Promise<boolean> {
    const info = await lstatOrUndefined(this.blobPath(descriptor.digest));
    return info !== undefined && info.isFile() && info.size === descriptor.size;
  }

  /** Under the lock, removes the record at `path` if its blob is still missing or damaged, and a damaged blob. */
  private async dropBroken(path: string): Promise<void> {
    await this.locked(async () => {
      const record = await readRecord(path);
      const descriptor = record?.layer?.descriptor;
      if (descriptor === undefined || (await this.blobIntact(descriptor))) return;
      await removeIfExists(path);
      await removeIfExists(this.blobPath(descriptor.digest));
    });
  }
}
