/** Layers written from small entry lists into a temp layout, as openers the SBOM readers take. */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { LayerOpener } from '../../../builder/attest/sparse-rootfs.js';
import type { LayerEntry } from '../../../layers/entry.js';
import type { OciLayout } from '../../../layers/oci-layout.js';
import { writeLayer } from '../../../layers/write-layer.js';

const MTIME = 1700000000;

export const dir = (path: string): LayerEntry => ({ path, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: MTIME });
export const symlink = (path: string, target: string): LayerEntry => ({ path, type: 'symlink', linkTarget: target, mode: 0o777, uid: 0, gid: 0, mtime: MTIME });
export const hardlink = (path: string, target: string): LayerEntry => ({ path, type: 'hardlink', linkTarget: target, mode: 0o644, uid: 0, gid: 0, mtime: MTIME });
export const whiteout = (path: string): LayerEntry => ({ path, type: 'whiteout', mode: 0, uid: 0, gid: 0, mtime: MTIME });
export const opaque = (path: string): LayerEntry => ({ path, type: 'opaque', mode: 0o755, uid: 0, gid: 0, mtime: MTIME });

export function file(path: string, content: string | Buffer): LayerEntry {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content);
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: MTIME, size: bytes.length, open: () => Readable.from([bytes]) };
}

export async function fixtureFile(path: string, from: string): Promise<LayerEntry> {
  return file(path, await readFile(from));
}

/** Writes each entry list as one gzip layer; returns openers, lowest layer first. */
export async function layersOf(layout: OciLayout, layers: readonly LayerEntry[][]): Promise<LayerOpener[]> {
  const openers: LayerOpener[] = [];
  for (const entries of layers) {
    const { descriptor } = await writeLayer(entries, layout, { compression: 'gzip' });
    openers.push(() => createReadStream(layout.path(descriptor.digest)));
  }
  return openers;
}
