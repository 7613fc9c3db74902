import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { TsbuildError } from './errors.js';
import type { OciLayout } from './oci-layout.js';
import { openWriteStream, syncFile } from './fs-util.js';

/** Adds entries to a tar archive with fixed metadata: owner 0:0, mtime 0, modes 0644/0755. */
export interface TarWriter {
  directory(name: string): Promise<void>;
  file(name: string, content: Buffer): Promise<void>;
  /**
   * Adds a file of known size whose content is `source`, passed through `transform` if given;
   * a size mismatch fails the archive.
   */
  stream(name: string, size: number, source: Readable, transform?: Transform): Promise<void>;
}

const EPOCH = new Date(0);
const OWNER = { uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH };

/**
 * Writes a tar archive to `dest` through a temp file in the same directory that is renamed into
 * place at the end, so `dest` never holds a partial archive. `fill` adds the entries in order.
 */
export async function writeTarFile(dest: string, fill: (tar: TarWriter) => Promise<void>): Promise<void> {
  const target = resolve(dest);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(8).toString('hex')}.tmp`);
  const pack = tarStream.pack();
  let written: Promise<void> | undefined;
  try {
    written = pipeline(pack, await openWriteStream(temp, { flags: 'wx' }));
    // `written` only settles early when writing fails; then filling must stop too.
    await Promise.race([fill(tarWriter(pack)), written]);
    pack.finalize();
    await written;
    await syncFile(temp);
    await rename(temp, target);
  } catch (error) {
    if (written) {
      pack.destroy(error instanceof Error ? error : new Error(String(error)));
      await written.catch(() => undefined);
    }
    if (error instanceof TsbuildError) throw error;
    throw new TsbuildError('OUTPUT', `cannot write ${target}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Writes the layout as a tar archive (`oci-archive`): `oci-layout`, `index.json`, then every blob
 * sorted by algorithm and digest. Same layout content, same archive bytes.
 */
export async function writeLayoutTar(layout: OciLayout, dest: string): Promise<void> {
  // index.json is read before the blobs are listed: blobs are always committed before the index
  // names them, so every blob the copied index needs is in the listing.
  const layoutFile = await readFile(join(layout.dir, 'oci-layout'));
  const index = await readFile(join(layout.dir, 'index.json'));
  const blobs = await listBlobs(join(layout.dir, 'blobs'));
  await writeTarFile(dest, async (tar) => {
    await tar.file('oci-layout', layoutFile);
    await tar.file('index.json', index);
    await tar.directory('blobs/');
    for (const [algorithm, names] of blobs) {
      await tar.directory(`blobs/${algorithm}/`);
      for (const name of names) {
        const path = join(layout.dir, 'blobs', algorithm, name);
        const { size } = await stat(path);
        await tar.stream(`blobs/${algorithm}/${name}`, size, createReadStream(path));
      }
    }
  });
}

/** Blob file names per algorithm directory, both sorted; anything that is not a blob is left out. */
async function listBlobs(blobsDir: string): Promise<Array<[string, string[]]>> {
  const result: Array<[string, string[]]> = [];
  const algorithms = (await readdir(blobsDir, { withFileTypes: true }).catch(() => []))
    .filter((entry) => entry.isDirectory() && /^[a-z0-9]+$/.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  for (const algorithm of algorithms) {
    const names = (await readdir(join(blobsDir, algorithm), { withFileTypes: true }))
      .filter((entry) => entry.isFile() && /^[0-9a-f]+$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
    result.push([algorithm, names]);
  }
  return result;
}

function tarWriter(pack: tarStream.Pack): TarWriter {
  return {
    directory: (name) => addEntry(pack, { name, type: 'directory', mode: 0o755, ...OWNER }),
    file: (name, content) => addEntry(pack, { name, type: 'file', mode: 0o644, size: content.length, ...OWNER }, content),
    stream: async (name, size, source, transform) => {
      const entry = pack.entry({ name, type: 'file', mode: 0o644, size, ...OWNER });
      await (transform === undefined ? pipeline(source, entry) : pipeline(source, transform, entry));
    },
  };
}

function addEntry(pack: tarStream.Pack, header: Partial<tarStream.Header> & { name: string }, content?: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const callback = (error?: Error | null): void => (error ? reject(error) : resolvePromise());
    if (content === undefined) pack.entry(header, callback);
    else pack.entry(header, content, callback);
  });
}

