/**
 * The few files of an image's final root filesystem that an SBOM needs, read straight from the layer
 * tars: nothing is extracted, so no path of the (untrusted) image ever reaches the host's file
 * system. Layers are applied in order with their whiteouts, and every symlink is kept, so that a
 * path is resolved as inside the container, clamped to the root (`/lib -> usr/lib` works, and a
 * link to `../../etc` stays in the image).
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { decompressStream } from '../../layers/compression.js';
import { TsbuildError } from '../../layers/errors.js';
import { cleanRootRelative } from '../../layers/secure-join.js';

/** Re-openable layer blob, compressed or not, lowest layer first. */
export type LayerOpener = () => Readable | Promise<Readable>;

/** Which regular files to keep, by their root-relative path as stored in the layer. */
export type KeepFile = (path: string) => boolean;

/** What of a kept file to hold in memory: its content, or less (what a reader needs of thousands of small files). */
export type ReduceFile = (path: string, content: Buffer) => Buffer;

/** A package database larger than this is not a database: refuse it rather than hold it in memory. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const MAX_SYMLINKS = 255;
const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** What one layer changes, collected before it is applied: whiteouts hide only lower layers. */
interface LayerChanges {
  /** Paths removed with everything below them. */
  readonly removed: string[];
  /** Directories that replace whatever non-directory a lower layer had at their path. */
  readonly directories: string[];
  readonly opaque: string[];
  readonly files: Map<string, Buffer>;
  readonly links: Map<string, string>;
}

export class SparseRootfs {
  private readonly files = new Map<string, Buffer>();
  private readonly links = new Map<string, string>();

  private constructor() {}

  /** Reads `layers` (lowest first), keeping the regular files `keep` selects and every symlink. */
  static async read(layers: readonly LayerOpener[], keep: KeepFile, reduce: ReduceFile = (_path, content) => content): Promise<SparseRootfs> {
    const tree = new SparseRootfs();
    const lower = (path: string): Buffer | undefined => tree.files.get(path);
    for (const [index, open] of layers.entries()) tree.apply(await readLayer(await open(), keep, reduce, lower, index));
    return tree;
  }

  /** The content of the regular file at `path` as the container sees it, symlinks followed inside the root. */
  readFile(path: string): Buffer | undefined {
    const resolved = this.resolve(path);
    return resolved === undefined ? undefined : this.files.get(resolved);
  }

  /** Kept files whose stored path `match` accepts, sorted by path. */
  filesMatching(match: (path: string) => boolean): Array<{ path: string; content: Buffer }> {
    return [...this.files.entries()]
      .filter(([path]) => match(path))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([path, content]) => ({ path, content }));
  }

  /** Root-relative path of `path` with every symlink on the way followed and clamped to the root; undefined for a loop. */
  resolve(path: string): string | undefined {
    const pending = cleanRootRelative(path).split('/').filter(Boolean);
    const done: string[] = [];
    let followed = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      if (part === '..') {
        done.pop();
        continue;
      }
      const candidate = [...done, part].join('/');
      const target = this.links.get(candidate);
      if (target === undefined) {
        done.push(part);
        continue;
      }
      if (++followed > MAX_SYMLINKS) return undefined;
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
    }
    return done.join('/');
  }

  private apply(changes: LayerChanges): void {
    for (const dir of changes.opaque) this.removeBelow(dir);
    for (const dir of changes.directories) {
      this.files.delete(dir);
      this.links.delete(dir);
    }
    for (const path of changes.removed) {
      this.removeBelow(path);
      this.files.delete(path);
      this.links.delete(path);
    }
    for (const [path, content] of changes.files) this.files.set(path, content);
    for (const [path, target] of changes.links) this.links.set(path, target);
  }

  private removeBelow(dir: string): void {
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const map of [this.files, this.links]) {
      for (const key of map.keys()) if (key.startsWith(prefix)) map.delete(key);
    }
  }
}

async function readLayer(blob: Readable, keep: KeepFile, reduce: ReduceFile, lower: (path: string) => Buffer | undefined, index: number): Promise<LayerChanges> {
  const changes: LayerChanges = { removed: [], directories: [], opaque: [], files: new Map(), links: new Map() };
  const extract = tarExtract();
  const collect = (async () => {
    for await (const entry of extract) {
      const path = cleanRootRelative(entry.header.name);
      const slash = path.lastIndexOf('/');
      const dir = slash < 0 ? '' : path.slice(0, slash);
      const base = path.slice(slash + 1);
      if (base === OPAQUE) {
        changes.opaque.push(dir);
      } else if (base.startsWith(WHITEOUT)) {
        changes.removed.push(dir === '' ? base.slice(WHITEOUT.length) : `${dir}/${base.slice(WHITEOUT.length)}`);
      } else if (entry.header.type === 'directory') {
        if (path !== '') changes.directories.push(path);
      } else if (path !== '') {
        // Anything but a directory replaces what a lower layer had at its path, a whole tree included.
        changes.removed.push(path);
        if (entry.header.type === 'symlink') changes.links.set(path, entry.header.linkname ?? '');
        if (entry.header.type === 'link' && keep(path)) {
          // A hardlink carries the content of its target, kept earlier in this layer or below it.
          const target = cleanRootRelative(entry.header.linkname ?? '');
          const content = changes.files.get(target) ?? lower(target);
          if (content !== undefined) changes.files.set(path, content);
        }
        if (entry.header.type === 'file' && keep(path)) {
          changes.files.set(path, reduce(path, await readEntry(entry, path)));
          continue;
        }
      }
      entry.resume();
    }
  })();
  // A failure while collecting tears the tar reader down, and with it the pipeline feeding it.
  const collected = collect.catch((err: unknown) => {
    extract.destroy(err as Error);
    throw err;
  });
  try {
    await Promise.all([pipeline(await decompressStream(blob), extract), collected]);
  } catch (err) {
    const code = err instanceof TsbuildError ? err.code : 'INVALID_LAYER';
    throw new TsbuildError(code, `cannot read layer ${index + 1} of the image for its SBOM: ${(err as Error).message}`, { cause: err });
  }
  return changes;
}

async function readEntry(entry: AsyncIterable<unknown> & { header: { size?: number } }, path: string): Promise<Buffer> {
  if ((entry.header.size ?? 0) > MAX_FILE_BYTES) {
    throw new TsbuildError('BAD_IMAGE', `/${path} is ${entry.header.size} bytes, more than a package database may hold`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of entry) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
