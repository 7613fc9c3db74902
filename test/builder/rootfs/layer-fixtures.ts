/** Small real layers, and a way to list a tree in full detail, for the rootfs tests. */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileLayer, type ImageLayer } from '../../../builder/model/image-layer.js';
import type { LayerEntry } from '../../../layers/entry.js';
import { OciLayout } from '../../../layers/oci-layout.js';
import type { Digest } from '../../../layers/types.js';
import { writeLayer } from '../../../layers/write-layer.js';

const mtime = 1_600_000_000;

const dir = (p: string, mode = 0o755, uid = 0): LayerEntry => ({ path: p, type: 'directory', mode, uid, gid: uid, mtime });
const file = (p: string, text: string, mode = 0o644, uid = 0, xattrs?: Record<string, Buffer>): LayerEntry => ({
  path: p, type: 'file', mode, uid, gid: uid, mtime, size: Buffer.byteLength(text), open: () => Readable.from([Buffer.from(text)]), xattrs,
});

/**
 * Base layer: owners, setuid and sticky modes, a symlink, a hardlink and an xattr.
 * Second layer: deletes `etc/hello` and adds `etc/second`.
 */
export const baseEntries: LayerEntry[] = [
  dir('bin'),
  file('bin/tool', '#!/bin/sh\necho tool\n', 0o755),
  { path: 'bin/tool-link', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime, linkTarget: 'bin/tool' },
  { path: 'bin/sh', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime, linkTarget: 'tool' },
  file('bin/su', 'setuid\n', 0o4755),
  dir('etc'),
  file('etc/hello', 'hello\n', 0o640, 1000),
  file('etc/tagged', 'tagged\n', 0o644, 0, { 'user.tsbuild-test': Buffer.from([0, 1, 2, 255]) }),
  dir('home'),
  dir('home/app', 0o750, 1000),
  dir('tmp', 0o1777),
];

export const secondEntries: LayerEntry[] = [
  dir('etc'),
  { path: 'etc/hello', type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime },
  file('etc/second', 'second\n', 0o600, 1000),
];

/** A regular file of `size` zero bytes at `p`. */
export function bigFile(p: string, size: number): LayerEntry {
  const chunk = Buffer.alloc(1024 * 1024);
  return {
    path: p, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, size,
    open: () => Readable.from((function* () { for (let left = size; left > 0; left -= chunk.length) yield chunk.subarray(0, Math.min(left, chunk.length)); })()),
  };
}

/** Writes each entry list as a gzip layer into the OCI layout at `layoutDir`. */
export async function writeLayers(layoutDir: string, ...entryLists: LayerEntry[][]): Promise<ImageLayer[]> {
  const layout = await OciLayout.open(layoutDir, { create: true });
  const layers: ImageLayer[] = [];
  for (const entries of entryLists) {
    const { descriptor, diffId } = await writeLayer(entries, layout, { compression: 'gzip' });
    layers.push(fileLayer(descriptor, diffId, layout.path(descriptor.digest)));
  }
  return layers;
}

/** A layer that claims another diff_id than its content has. */
export function withWrongDiffId(layer: ImageLayer): ImageLayer {
  const wrong: Digest = `sha256:${createHash('sha256').update('not this layer').digest('hex')}`;
  return { ...layer, diffId: wrong };
}

/**
 * One line per path under `root` (the root itself included) with type, mode, owner, size, mtime,
 * inode link count, and content hash or link target: equal listings mean untouched trees.
 */
export async function listTree(root: string): Promise<string[]> {
  const lines: string[] = [];
  async function visit(rel: string): Promise<void> {
    const full = path.join(root, rel);
    const info = await lstat(full);
    let detail = '';
    if (info.isFile()) detail = createHash('sha256').update(await readFile(full)).digest('hex');
    else if (info.isSymbolicLink()) detail = `-> ${await readlink(full)}`;
    lines.push(`${rel || '.'} ${info.mode.toString(8)} ${info.uid}:${info.gid} ${info.size} ${info.mtimeMs} ${info.nlink} ${detail}`);
    if (info.isDirectory()) {
      for (const name of (await readdir(full)).sort()) await visit(path.join(rel, name));
    }
  }
  await visit('');
  return lines;
}
