import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import type { Image } from '../../layers/image.js';
import { blobLayer } from '../../layers/lazy-image.js';
import { readLayoutImage, selectLayoutRoot } from '../../layers/layout-image.js';
import { writeImage, writeToLayout } from '../../layers/layout-write.js';
import { appendLayers, editConfig } from '../../layers/mutate.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Digest } from '../../layers/types.js';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';

const fixtures = join(repoRoot(), 'test/fixtures/ggcr/layout');
const amd64 = { os: 'linux', architecture: 'amd64' };

function sha256(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A tar holding one regular file. */
async function oneFileTar(name: string, content: string): Promise<Buffer> {
  const tar = pack();
  tar.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, content);
  tar.finalize();
  return buffer(tar);
}

/** Asserts that two images have the same documents and layer bytes. */
async function assertSameImage(actual: Image, expected: Image): Promise<void> {
  assert.equal(await actual.digest(), await expected.digest());
  assert.deepEqual(await actual.rawManifest(), await expected.rawManifest());
  assert.deepEqual(await actual.rawConfig(), await expected.rawConfig());
  const [a, b] = [await actual.layers(), await expected.layers()];
  assert.equal(a.length, b.length);
  for (const [i, layer] of a.entries()) {
    assert.deepEqual(await buffer(await layer.compressed()), await buffer(await b[i]!.compressed()));
    assert.equal(await layer.diffId(), await b[i]!.diffId());
  }
}

describe('writeToLayout', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'layout-write-test-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('writes a nested index and reads it back the same', async () => {
    const source = await OciLayout.open(join(fixtures, 'test_index'), { create: false });
    const { root } = await selectLayoutRoot(source, { tag: '3' });
    assert.equal(root.kind, 'index');
    const target = await OciLayout.open(join(work, 'nested'), { create: true });
    const written = await writeToLayout(target, root);
    await target.addImage(written, ['copy']);
    assert.equal(written.digest, root.kind === 'index' ? await root.index.digest() : undefined);

    // Byte for byte the fixture's documents, which list a Docker manifest as an OCI one: no validator run.
    await assertSameImage(await readLayoutImage(target, { tag: 'copy' }, amd64), await readLayoutImage(source, { tag: '3' }, amd64));
  });

  it('writes an image built with mutate, and skips blobs already there', async () => {
    const source = await OciLayout.open(join(fixtures, 'test_index_one_image'), { create: false });
    const base = await readLayoutImage(source, {}, amd64);
    const tar = await oneFileTar('hello.txt', 'written by the layout-write test\n');
    const blob = gzipSync(tar);
    const layer = blobLayer({ descriptor: { mediaType: MediaType.LayerGzip, digest: sha256(blob), size: blob.length }, open: async () => Readable.from([blob]) });
    const image = editConfig(appendLayers(base, [{ layer, history: { created_by: 'test' } }]), (config) => ({ ...config, author: 'layout-write test' }));

    const target = await OciLayout.open(join(work, 'mutated'), { create: true });
    const descriptor = await writeImage(target, image);
    assert.deepEqual(descriptor, await image.descriptor());
    await target.addImage(descriptor, ['mutated']);
    const back = await readLayoutImage(target, { tag: 'mutated' }, amd64);
    await assertSameImage(back, image);
    assert.equal((await back.config()).author, 'layout-write test');
    assert.deepEqual((await back.config()).rootfs.diff_ids.at(-1), sha256(tar));
    await validateLayout(target.dir);

    // A second write finds every blob in place: nothing is replaced, no temp file stays.
    const inodes = async (): Promise<number[]> => {
      const dir = join(target.dir, 'blobs', 'sha256');
      return Promise.all((await readdir(dir)).sort().map(async (name) => (await stat(join(dir, name))).ino));
    };
    const before = await inodes();
    await writeImage(target, image);
    assert.deepEqual(await inodes(), before);
    assert.deepEqual((await readdir(target.dir)).filter((name) => name.startsWith('.tmp-')), []);
  });

  it('stores many layers at once, and a layer that is not what it claims fails the image with nothing left half-written', async () => {
    const source = await OciLayout.open(join(fixtures, 'test_index_one_image'), { create: false });
    const base = await readLayoutImage(source, {}, amd64);
    const layers = await Promise.all(
      Array.from({ length: 9 }, async (_, i) => {
        const blob = gzipSync(await oneFileTar(`file-${i}.txt`, `layer ${i}\n`));
        // The sixth claims one byte more than it has.
        const size = i === 5 ? blob.length + 1 : blob.length;
        return { layer: blobLayer({ descriptor: { mediaType: MediaType.LayerGzip, digest: sha256(blob), size }, open: async () => Readable.from([blob]) }), history: { created_by: `layer ${i}` } };
      }),
    );
    const good = appendLayers(base, [...layers.slice(0, 5), ...layers.slice(6)]);
    const target = await OciLayout.open(join(work, 'many'), { create: true });
    await target.addImage(await writeImage(target, good), ['many']);
    await assertSameImage(await readLayoutImage(target, { tag: 'many' }, amd64), good);

    const bad = await OciLayout.open(join(work, 'bad'), { create: true });
    const image = appendLayers(base, layers);
    await assert.rejects(writeImage(bad, image), { code: 'SIZE_MISMATCH' });
    assert.equal(await bad.has(await image.digest()), false, 'no manifest for an image whose layer failed');
    assert.deepEqual((await readdir(bad.dir)).filter((name) => name.startsWith('.tmp-')), []);
  });
});
