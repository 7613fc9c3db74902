import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { LayerEntry } from '../../layers/entry.js';
import { openWriteStream, syncFile } from '../../layers/fs-util.js';
import { layerTar } from '../../layers/tar-writer.js';
import { diffTrees } from '../snapshot/diff.js';
import { scanTree } from '../snapshot/scan.js';
import { checkStdout, STDOUT_DEST, type Exporter } from './exporter.js';
import { checkFileDest, writeFileDest } from './file-dest.js';
import { unpackImages, type UnpackedImage } from './final-rootfs.js';

/** `type=tar`: the final stage's filesystem as one tar archive. */
export interface TarOutput {
  readonly type: 'tar';
  /** A file, or `-` for stdout. */
  readonly dest: string;
}

export const tarExporter: Exporter<TarOutput> = {
  type: 'tar',
  usage: 'type=tar,dest=FILE|-',
  parse(fields) {
    return { type: 'tar', dest: fields.required('dest', 'a file, or - for stdout') };
  },
  check(spec, build) {
    checkStdout(spec.dest, 'type=tar', build);
    checkFileDest(spec.dest, 'type=tar');
  },
  writes(spec) {
    return spec.dest === STDOUT_DEST ? undefined : { path: path.resolve(spec.dest), kind: 'file' };
  },
  async export(artifact, spec, context) {
    const images = await unpackImages(artifact, context.rootfsCache);
    const entries: LayerEntry[] = [];
    for (const image of images) entries.push(...(await treeEntries(image)));
    const where = await writeFileDest(spec.dest, context, (file) => writeTar(entries, file));
    return `tar ${where}`;
  },
};

/** The entries of one image's tree, under its platform directory when there is one. */
async function treeEntries(image: UnpackedImage): Promise<LayerEntry[]> {
  const entries = image.dir === undefined ? [] : await diffTrees(new Map(), await scanTree(image.dir), image.dir);
  if (image.prefix === '') return entries;
  const under = (p: string): string => `${image.prefix}/${p}`;
  const top: LayerEntry = { path: image.prefix, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 };
  return [top, ...entries.map((e) => ({ ...e, path: under(e.path), ...(e.type === 'hardlink' && e.linkTarget !== undefined ? { linkTarget: under(e.linkTarget) } : {}) }))];
}

/** Writes the entries as a tar at `file`, through a temp file renamed into place. */
async function writeTar(entries: readonly LayerEntry[], file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  try {
    await pipeline(layerTar(entries), await openWriteStream(temp, { flags: 'wx' }));
    await syncFile(temp);
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}
