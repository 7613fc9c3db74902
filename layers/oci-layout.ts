import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, linkSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type { BlobStore } from './blob-store.js';
import { sha256Digest } from './digest.js';
import { TsbuildError } from './errors.js';
import { withLockFile } from './layout-lock.js';
import { MediaType, RefNameAnnotation, type Descriptor, type Digest, type IndexManifest } from './types.js';
import { fileExistsSync, isErrnoCode, removeIfExists, removeSmallFileIfExists, syncFile, writeSynced } from './fs-util.js';

export interface OpenLayoutOptions {
  /** Create the directory, `oci-layout` and an empty `index.json` when they are missing. */
  create: boolean;
  /** How long `updateIndex` waits for another process holding the index lock (default 60 s). */
  lockTimeoutMs?: number;
  /**
   * false for a scratch layout whose directory is thrown away after a crash: its files are renamed
   * or linked into place without being synced first. A durable store that links one of its blobs
   * syncs it itself.
   */
  durable?: boolean;
}

const LAYOUT_FILE = 'oci-layout';
const INDEX_FILE = 'index.json';
const LOCK_FILE = 'index.json.lock';
/** Temp files live in the layout root: validators and GC tools only look inside `blobs/<alg>/`. */
const TEMP_PREFIX = '.tmp-';
const SHA256_DIGEST = /^sha256:([0-9a-f]{64})$/;
/** `org.opencontainers.image.ref.name` grammar from the image-spec annotations document. */
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/**
 * An OCI image layout directory (image-spec `image-layout.md`), usable as a blob store. Its own
 * files are small and local: they are looked up, written, renamed and removed at once, and only
 * an fsync or a blob's read waits off the thread.
 */
export class OciLayout implements BlobStore {
  readonly dir: string;
  private readonly lockTimeoutMs: number | undefined;
  private readonly durable: boolean;
  /** Set once `blobs/sha256` is known to exist. */
  private blobDirMade = false;

  private constructor(dir: string, lockTimeoutMs: number | undefined, durable: boolean) {
    this.dir = dir;
    this.lockTimeoutMs = lockTimeoutMs;
    this.durable = durable;
  }

  /** Opens (and with `create`, initializes) the layout at `dir`; fails if it is not a layout. */
  static async open(dir: string, options: OpenLayoutOptions): Promise<OciLayout> {
    const root = resolve(dir);
    if (options.create) await initialize(root, options.durable ?? true);
    await checkLayoutFile(root);
    if (!fileExistsSync(join(root, INDEX_FILE))) {
      throw new TsbuildError('LAYOUT', `${root} is not a valid OCI image layout: ${INDEX_FILE} is missing`);
    }
    return new OciLayout(root, options.lockTimeoutMs, options.durable ?? true);
  }

  async tempPath(): Promise<string> {
    return join(this.dir, TEMP_PREFIX + randomBytes(12).toString('hex'));
  }

  async commit(tempPath: string, digest: Digest): Promise<void> {
    const target = this.path(digest);
    if (fileExistsSync(target)) {
      // Another writer stored it first; this temp file may be a whole layer.
      await removeIfExists(tempPath);
      return;
    }
    if (!this.blobDirMade) mkdirSync(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    this.blobDirMade = true;
    if (this.durable) await syncFile(tempPath);
    renameSync(tempPath, target);
  }

  async has(digest: Digest): Promise<boolean> {
    return fileExistsSync(this.path(digest));
  }

  path(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', blobHex(digest));
  }

  /** Stores `bytes` under their digest (skipped when already present) and describes them. */
  async writeBlob(bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = sha256Digest(bytes);
    if (!fileExistsSync(this.path(digest))) {
      const temp = await this.tempPath();
      try {
        writeFileSync(temp, bytes, { flag: 'wx' });
        await this.commit(temp, digest);
      } catch (error) {
        removeSmallFileIfExists(temp);
        throw error;
      }
    }
    return { mediaType, digest, size: bytes.length };
  }

  /** Stores `value` as compact JSON, keys in their insertion order. */
  async writeJson(value: unknown, mediaType: string): Promise<Descriptor> {
    return this.writeBlob(Buffer.from(JSON.stringify(value), 'utf8'), mediaType);
  }

  /** Reads a whole blob, a document small enough to hold in memory, and checks it against its digest. */
  async readBlob(digest: Digest): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path(digest));
    } catch (error) {
      throw isErrnoCode(error, 'ENOENT') ? this.missingBlob(digest) : error;
    }
    if (sha256Digest(bytes) !== digest) throw this.corruptBlob(digest);
    return bytes;
  }

  async readJson<T>(digest: Digest): Promise<T> {
    const bytes = await this.readBlob(digest);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      throw new TsbuildError('LAYOUT', `blob ${digest} in ${this.dir} is not valid JSON`);
    }
  }

  /** Streams a blob; the stream fails at its end if the content does not match the digest. */
  openBlob(digest: Digest): Readable {
    const hex = blobHex(digest);
    const hash = createHash('sha256');
    const source = createReadStream(this.path(digest));
    const verifier = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
      flush: (callback) => {
        callback(hash.digest('hex') === hex ? null : this.corruptBlob(digest));
      },
    });
    source.on('error', (error) => verifier.destroy(isErrnoCode(error, 'ENOENT') ? this.missingBlob(digest) : error));
    verifier.on('close', () => source.destroy());
    return source.pipe(verifier);
  }

  async readIndex(): Promise<IndexManifest> {
    const path = join(this.dir, INDEX_FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) throw new TsbuildError('LAYOUT', `${path} is missing`);
      throw error;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new TsbuildError('LAYOUT', `${path} is not valid JSON`);
    }
    if (!isImageIndex(value)) throw new TsbuildError('LAYOUT', `${path} is not an OCI image index`);
    return value;
  }

  /**
   * Replaces `index.json` by `mutate(current index)` under an exclusive lock, so that concurrent
   * writers never lose each other's entries; the new file is renamed into place atomically.
   */
  async updateIndex(mutate: (index: IndexManifest) => IndexManifest): Promise<IndexManifest> {
    return withLockFile(
      join(this.dir, LOCK_FILE),
      async () => {
        const next = mutate(await this.readIndex());
        const temp = await this.tempPath();
        try {
          if (this.durable) await writeSynced(temp, JSON.stringify(next));
          else writeFileSync(temp, JSON.stringify(next), { flag: 'wx' });
          renameSync(temp, join(this.dir, INDEX_FILE));
        } catch (error) {
          removeSmallFileIfExists(temp);
          throw error;
        }
        return next;
      },
      { timeoutMs: this.lockTimeoutMs },
    );
  }

  /**
   * Lists `descriptor` in `index.json` once per ref name. Entries already carrying one of these
   * names are replaced (a re-tag moves the name); all other entries are kept. Without names the
   * descriptor is listed untagged, unless that exact entry is already there.
   */
  async addImage(descriptor: Descriptor, refNames: string[]): Promise<IndexManifest> {
    for (const name of refNames) {
      if (!REF_NAME.test(name)) throw new TsbuildError('LAYOUT', `invalid image reference name "${name}"`);
    }
    const annotations = { ...descriptor.annotations };
    delete annotations[RefNameAnnotation];
    const untagged: Descriptor = { ...descriptor, annotations };
    if (Object.keys(annotations).length === 0) delete untagged.annotations;
    const names = new Set(refNames);

    return this.updateIndex((index) => {
      const kept = index.manifests.filter((entry) => !names.has(entry.annotations?.[RefNameAnnotation] ?? ''));
      const added =
        refNames.length > 0
          ? [...names].map((name) => ({ ...untagged, annotations: { ...annotations, [RefNameAnnotation]: name } }))
          : kept.some((entry) => isDeepStrictEqual(entry, untagged))
            ? []
            : [untagged];
      return { ...index, manifests: [...kept, ...added] };
    });
  }

  private missingBlob(digest: Digest): TsbuildError {
    return new TsbuildError('LAYOUT', `blob ${digest} is missing from the OCI layout ${this.dir}`);
  }

  private corruptBlob(digest: Digest): TsbuildError {
    return new TsbuildError('LAYOUT', `blob ${digest} in the OCI layout ${this.dir} does not match its digest`);
  }
}

/** The hex part of a SHA-256 digest; anything else (including path tricks) is rejected. */
function blobHex(digest: string): string {
  const match = SHA256_DIGEST.exec(digest);
  if (match === null) throw new TsbuildError('LAYOUT', `unsupported or malformed blob digest "${digest}"`);
  return match[1] as string;
}

/** Creates the layout files that are missing; `oci-layout` first, so a half-made layout is never mistaken for a foreign directory. */
async function initialize(root: string, durable: boolean): Promise<void> {
  try {
    mkdirSync(root, { recursive: true });
  } catch (error) {
    throw new TsbuildError('LAYOUT', `cannot create the OCI layout directory ${root}: ${errorText(error)}`);
  }
  if (!fileExistsSync(join(root, LAYOUT_FILE))) {
    const foreign = readdirSync(root).filter((name) => !name.startsWith(TEMP_PREFIX));
    if (foreign.length > 0) {
      throw new TsbuildError('LAYOUT', `${root} is not empty and is not an OCI image layout (no ${LAYOUT_FILE} file)`);
    }
    await writeExclusive(root, LAYOUT_FILE, JSON.stringify({ imageLayoutVersion: '1.0.0' }), durable);
  }
  mkdirSync(join(root, 'blobs', 'sha256'), { recursive: true });
  // An existing layout is left as it is: writing and syncing a file only to find it there costs every opening.
  if (fileExistsSync(join(root, INDEX_FILE))) return;
  const empty: IndexManifest = { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
  await writeExclusive(root, INDEX_FILE, JSON.stringify(empty), durable);
}

async function checkLayoutFile(root: string): Promise<void> {
  const path = join(root, LAYOUT_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) {
      const what = fileExistsSync(root, true) ? `has no ${LAYOUT_FILE} file` : 'does not exist';
      throw new TsbuildError('LAYOUT', `${root} is not an OCI image layout: it ${what}`);
    }
    throw error;
  }
  let version: unknown;
  try {
    version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    throw new TsbuildError('LAYOUT', `${path} is not valid JSON`);
  }
  if (typeof version !== 'string' || !/^1\.\d+\.\d+$/.test(version)) {
    throw new TsbuildError('LAYOUT', `${path}: unsupported imageLayoutVersion ${JSON.stringify(version)} (supported: 1.x)`);
  }
}

function isImageIndex(value: unknown): value is IndexManifest {
  if (typeof value !== 'object' || value === null) return false;
  const { schemaVersion, manifests } = value as Record<string, unknown>;
  return (
    schemaVersion === 2 &&
    Array.isArray(manifests) &&
    manifests.every(
      (entry: unknown) =>
        typeof entry === 'object' &&
        entry !== null &&
        typeof (entry as Descriptor).digest === 'string' &&
        typeof (entry as Descriptor).mediaType === 'string' &&
        typeof (entry as Descriptor).size === 'number',
    )
  );
}

/** Writes `name` in `dir` with its full content at once, unless it already exists. */
async function writeExclusive(dir: string, name: string, content: string, durable: boolean): Promise<void> {
  const temp = join(dir, TEMP_PREFIX + randomBytes(12).toString('hex'));
  try {
    if (durable) await writeSynced(temp, content);
    else writeFileSync(temp, content, { flag: 'wx' });
    linkSync(temp, join(dir, name));
  } catch (error) {
    if (!isErrnoCode(error, 'EEXIST')) throw error;
  } finally {
    removeSmallFileIfExists(temp);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
