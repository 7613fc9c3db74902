import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { TsbuildError } from '../../layers/errors.js';
import type { Image, Layer } from '../../layers/image.js';
import { blobLayer, lazyImage, lazyIndex } from '../../layers/lazy-image.js';
import { appendLayers, appendManifests, editConfig, emptyImage, emptyIndex } from '../../layers/mutate.js';
import { MediaType, type Descriptor, type Digest, type ImageConfig } from '../../layers/types.js';

function sha256(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A content-addressed store in memory that counts reads, standing in for a backend. */
class Blobs {
  readonly bytes = new Map<Digest, Buffer>();
  readonly reads: Digest[] = [];

  put(content: Buffer | string, mediaType: string): Descriptor {
    const bytes = Buffer.from(content);
    const digest = sha256(bytes);
    this.bytes.set(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  async get(digest: Digest): Promise<Buffer> {
    this.reads.push(digest);
    const bytes = this.bytes.get(digest);
    if (bytes === undefined) throw new TsbuildError('NOT_FOUND', `no blob ${digest}`);
    return bytes;
  }

  image(manifest: Descriptor): Image {
    return lazyImage({
      label: `memory@${manifest.digest}`,
      errorCode: 'MANIFEST_INVALID',
      digest: manifest.digest,
      rawManifest: () => this.get(manifest.digest),
      rawConfig: (descriptor) => this.get(descriptor.digest),
      layer: (descriptor, diffId) => blobLayer({ descriptor, diffId, open: async () => Readable.from([await this.get(descriptor.digest)]) }),
    });
  }
}

/** A gzip layer whose uncompressed content is `text`. */
function layerBlob(blobs: Blobs, text: string): { descriptor: Descriptor; diffId: Digest } {
  return { descriptor: blobs.put(gzipSync(Buffer.from(text)), MediaType.LayerGzip), diffId: sha256(text) };
}

/** A one-layer linux/amd64 image in `blobs`. */
function baseImage(blobs: Blobs): { manifest: Descriptor; layer: Descriptor; diffId: Digest } {
  const { descriptor: layer, diffId } = layerBlob(blobs, 'base layer');
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'base' }],
  };
  const configDescriptor = blobs.put(JSON.stringify(config), MediaType.ImageConfig);
  const manifest = blobs.put(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers: [layer] }),
    MediaType.ImageManifest,
  );
  return { manifest, layer, diffId };
}

describe('lazyImage and blobLayer', () => {
  it('reads manifest and config once, and no layer blob until a layer is read', async () => {
    const blobs = new Blobs();
    const { manifest, layer, diffId } = baseImage(blobs);
    const image = blobs.image(manifest);
    assert.equal(blobs.reads.length, 0, 'nothing is read before it is asked for');

    assert.equal(await image.digest(), manifest.digest);
    assert.deepEqual(await image.descriptor(), manifest);
    assert.equal(JSON.stringify({ image }), `{"image":"memory@${manifest.digest}"}`, 'printed as where it is from');
    assert.equal((await image.config()).os, 'linux');
    const [only] = await image.layers();
    assert.equal(await only!.digest(), layer.digest);
    assert.equal(await only!.diffId(), diffId);
    await image.config();
    await image.manifest();
    assert.deepEqual(blobs.reads.sort(), [manifest.digest, (await image.manifest()).config.digest].sort());

    assert.equal((await buffer(await only!.uncompressed())).toString(), 'base layer');
    assert.equal(sha256(await buffer(await only!.compressed())), layer.digest, 'the blob can be reopened');
    assert.equal(blobs.reads.filter((d) => d === layer.digest).length, 2);
  });

  it('computes an unknown diff_id by reading the layer', async () => {
    const blobs = new Blobs();
    const { descriptor, diffId } = layerBlob(blobs, 'some tar bytes');
    const layer = blobLayer({ descriptor, open: async () => Readable.from([await blobs.get(descriptor.digest)]) });
    assert.equal(await layer.diffId(), diffId);
    assert.equal(await layer.diffId(), diffId);
    assert.equal(blobs.reads.length, 1, 'the diff_id is kept once computed');
  });

  it('refuses a manifest whose config lists another number of diff_ids', async () => {
    const blobs = new Blobs();
    const config = blobs.put(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }), MediaType.ImageConfig);
    const { descriptor } = layerBlob(blobs, 'x');
    const manifest = blobs.put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config, layers: [descriptor] }), MediaType.ImageManifest);
    await assert.rejects(blobs.image(manifest).layers(), (error: unknown) => error instanceof TsbuildError && /1 layers but 0 diff_ids/.test(error.message));
  });

  it('refuses an index where an image is expected', async () => {
    const blobs = new Blobs();
    const index = blobs.put(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] }), MediaType.ImageIndex);
    await assert.rejects(blobs.image(index).manifest(), /is an image index, not an image manifest/);
  });

  it('resolves index entries to images', async () => {
    const blobs = new Blobs();
    const { manifest } = baseImage(blobs);
    const indexDescriptor = blobs.put(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [{ ...manifest, platform: { os: 'linux', architecture: 'amd64' } }] }),
      MediaType.ImageIndex,
    );
    const index = lazyIndex({
      label: 'memory index',
      errorCode: 'MANIFEST_INVALID',
      rawManifest: () => blobs.get(indexDescriptor.digest),
      image: async (descriptor) => blobs.image(descriptor),
      imageIndex: async () => assert.fail('no nested index here'),
    });
    assert.equal(await index.digest(), indexDescriptor.digest);
    const image = await index.image(manifest.digest);
    assert.equal((await image.config()).architecture, 'amd64');
    await assert.rejects(index.image(sha256('absent')), (error: unknown) => error instanceof TsbuildError && error.code === 'IMAGE_NOT_FOUND');
  });
});

describe('mutate', () => {
  /** A layer built in memory, counting how often its diff_id is asked for. */
  function memoryLayer(text: string): Layer & { diffIdCalls: number } {
    const blob = gzipSync(Buffer.from(text));
    const descriptor = { mediaType: MediaType.LayerGzip, digest: sha256(blob), size: blob.length };
    const layer = blobLayer({ descriptor, diffId: sha256(text), open: async () => Readable.from([blob]) });
    const counted = {
      ...layer,
      diffIdCalls: 0,
      diffId: async () => {
        counted.diffIdCalls += 1;
        return layer.diffId();
      },
    };
    return counted;
  }

  it('appends layers, diff_ids and history without changing the base', async () => {
    const blobs = new Blobs();
    const { manifest, layer, diffId } = baseImage(blobs);
    const base = blobs.image(manifest);
    const baseBytes = Buffer.from(await base.rawManifest());
    const added = memoryLayer('added layer');
    const result = appendLayers(base, [{ layer: added, history: { created_by: 'RUN add' } }, { layer: memoryLayer('second') }]);
    assert.equal(added.diffIdCalls, 0, 'nothing is computed before it is asked for');

    const config = await result.config();
    assert.deepEqual(config.rootfs.diff_ids, [diffId, sha256('added layer'), sha256('second')]);
    assert.deepEqual(config.history, [{ created_by: 'base' }, { created_by: 'RUN add' }, {}]);
    assert.deepEqual(config.config, { Env: ['PATH=/bin'] });

    const raw = await result.rawManifest();
    const parsed = JSON.parse(raw.toString()) as { config: Descriptor; layers: Descriptor[] };
    assert.equal(await result.digest(), sha256(raw));
    assert.deepEqual(parsed.config, { mediaType: MediaType.ImageConfig, digest: sha256(await result.rawConfig()), size: (await result.rawConfig()).length });
    assert.deepEqual(parsed.layers.map((l) => l.digest), [layer.digest, await added.digest(), sha256(gzipSync(Buffer.from('second')))]);
    assert.equal((await result.layers()).length, 3);
    assert.deepEqual(JSON.parse((await result.rawConfig()).toString()), config, 'the config bytes are the config');

    await result.rawManifest();
    await result.config();
    assert.equal(added.diffIdCalls, 1, 'results are kept');
    assert.deepEqual(await base.rawManifest(), baseBytes, 'the base is unchanged');
    assert.deepEqual((await base.config()).rootfs.diff_ids, [diffId]);
  });

  it('edits the config on a copy and keeps the layers', async () => {
    const blobs = new Blobs();
    const { manifest } = baseImage(blobs);
    const base = blobs.image(manifest);
    const edited = editConfig(base, (config) => {
      config.config!.Env!.push('A=1');
      config.created = '2024-01-01T00:00:00Z';
      return config;
    });
    assert.deepEqual((await edited.config()).config?.Env, ['PATH=/bin', 'A=1']);
    assert.deepEqual((await base.config()).config?.Env, ['PATH=/bin']);
    assert.deepEqual((await edited.manifest()).layers, (await base.manifest()).layers);
    assert.notEqual(await edited.digest(), await base.digest());
    assert.equal((await edited.manifest()).config.digest, sha256(await edited.rawConfig()));
  });

  it('refuses a config edit that changes diff_ids', async () => {
    const blobs = new Blobs();
    const base = blobs.image(baseImage(blobs).manifest);
    const edited = editConfig(base, (config) => ({ ...config, rootfs: { type: 'layers', diff_ids: [] } }));
    await assert.rejects(edited.config(), /must not change rootfs.diff_ids/);
  });

  it('builds an image from scratch with the bytes JSON.stringify gives', async () => {
    const layer = memoryLayer('only');
    const config: ImageConfig = { created: '2024-01-01T00:00:00Z', architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('only')] }, history: [{ created_by: 'COPY' }] };
    const image = editConfig(appendLayers(emptyImage(), [{ layer }]), () => config);
    const configBytes = Buffer.from(JSON.stringify(config));
    assert.deepEqual(await image.rawConfig(), configBytes);
    const expected = {
      schemaVersion: 2,
      mediaType: MediaType.ImageManifest,
      config: { mediaType: MediaType.ImageConfig, digest: sha256(configBytes), size: configBytes.length },
      layers: [await layer.descriptor()],
    };
    assert.deepEqual(await image.rawManifest(), Buffer.from(JSON.stringify(expected)));
    assert.equal(await image.mediaType(), MediaType.ImageManifest);
  });

  it('lists images in an index and resolves them', async () => {
    const amd = editConfig(emptyImage(), (c) => ({ ...c, architecture: 'amd64', os: 'linux' }));
    const arm = editConfig(emptyImage(), (c) => ({ ...c, architecture: 'arm64', os: 'linux' }));
    const index = appendManifests(emptyIndex(), [
      { item: { kind: 'image', image: amd }, platform: { os: 'linux', architecture: 'amd64' } },
      { item: { kind: 'image', image: arm }, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const listed = (await index.indexManifest()).manifests;
    assert.deepEqual(listed, [
      { ...(await amd.descriptor()), platform: { os: 'linux', architecture: 'amd64' } },
      { ...(await arm.descriptor()), platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    assert.equal(await (await index.image(await arm.digest())).digest(), await arm.digest());
    assert.equal(await index.digest(), sha256(await index.rawManifest()));
    assert.equal((await emptyIndex().indexManifest()).manifests.length, 0, 'the base index is unchanged');
    await assert.rejects(index.image(sha256('absent')), /lists no manifest/);
  });
});
