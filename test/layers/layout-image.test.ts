import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { TsbuildError } from '../../layers/errors.js';
import { parseOciLayoutSource, readLayoutImage } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type Digest, type Platform } from '../../layers/types.js';
import { repoRoot } from '../support/repo-root.js';

const fixtures = join(repoRoot(), 'test/fixtures/ggcr/layout');
const amd64: Platform = { os: 'linux', architecture: 'amd64' };

function sha256(bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function open(name: string): Promise<OciLayout> {
  return OciLayout.open(join(fixtures, name), { create: false });
}

/** Asserts a TsbuildError with `code` whose message matches every pattern. */
function failsWith(code: string, ...patterns: RegExp[]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof TsbuildError, String(error));
    assert.equal(error.code, code, error.message);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

// Digests of the go-containerregistry sample layouts (see their index.json and blobs).
const IMAGE_A = 'sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650';
const IMAGE_A_CONFIG = 'sha256:6e0b05049ed9c17d02e1a55e80d6599dbfcce7f4f4b022e3c673e685789c470e';
const IMAGE_A_LAYER = 'sha256:dc52c6e48a1d51a96047b059f16889bc889c4b4c28f3b36b3f93187f62fc0b2b';
const IMAGE_B = 'sha256:32589985702551b6c56033bb3334432a0a513bf9d6aceda0f67c42b003850720';
const IMAGE_B_CONFIG = 'sha256:930705ce23e3b6ed4c08746b6fe880089c864fbaf62482702ae3fdd66b8c7fe9';

describe('readLayoutImage on the go-containerregistry layouts', () => {
  it('reads the only image of an untagged layout when no tag is asked for', async () => {
    const layout = await open('test_index_one_image');
    const image = await readLayoutImage(layout, {}, amd64);
    assert.equal(await image.digest(), 'sha256:98ceaf93e482fe91b9bfd6bba07137c098e49ee2d55e69f09fb6c951e75e0e46');
    assert.equal((await image.manifest()).mediaType, undefined);
    assert.equal((await image.manifest()).config.digest, 'sha256:381d958b555884ba59574ab5c066e9f6116b5aec3567675aa13bec63331f0810');
    assert.equal((await image.manifest()).config.mediaType, MediaType.ImageConfig);
    assert.equal((await image.config()).os, 'linux');
    assert.deepEqual((await image.config()).config?.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.deepEqual((await image.manifest()).layers.map((layer) => layer.digest), ['sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0']);

    // The layer stream is the stored blob; uncompressed it is the diff_id the config lists.
    const [first] = await image.layers();
    const layer = await buffer(await first!.compressed());
    assert.equal(sha256(layer), await first!.digest());
    assert.equal(sha256(gunzipSync(layer)), (await image.config()).rootfs.diff_ids[0]);
    assert.equal(sha256(await buffer(await first!.uncompressed())), await first!.diffId());
  });

  it('names the layout and the tag when the tag is unknown', async () => {
    const layout = await open('test_index_one_image');
    await assert.rejects(
      readLayoutImage(layout, { tag: 'latest' }, amd64),
      failsWith('IMAGE_NOT_FOUND', /test_index_one_image/, /no image tagged "latest"/, /no tagged images/),
    );
    const mixed = await open('test_index');
    await assert.rejects(
      readLayoutImage(mixed, { tag: 'nope' }, amd64),
      failsWith('IMAGE_NOT_FOUND', /test_index/, /"nope"/, /tags: 1, 2, 3, 4/),
    );
    // Without a tag, `latest` is meant; this layout has four images and none is `latest`.
    await assert.rejects(readLayoutImage(mixed, {}, amd64), failsWith('IMAGE_NOT_FOUND', /"latest"/));
  });

  it('resolves tag 1: a Docker schema2 manifest listed as an OCI manifest', async () => {
    const image = await readLayoutImage(await open('test_index'), { tag: '1' }, amd64);
    assert.equal(await image.digest(), IMAGE_A);
    assert.equal((await image.manifest()).mediaType, MediaType.DockerManifest);
    assert.equal((await image.manifest()).config.digest, IMAGE_A_CONFIG);
    assert.equal((await image.manifest()).config.mediaType, MediaType.DockerConfig);
    assert.deepEqual((await image.manifest()).layers, [{ mediaType: MediaType.DockerLayerGzip, size: 167, digest: IMAGE_A_LAYER }]);
    assert.equal((await image.config()).author, 'Bazel');
  });

  it('resolves tag 2: an entry with a generic media type, by the manifest’s own media type', async () => {
    const image = await readLayoutImage(await open('test_index'), { tag: '2' }, amd64);
    assert.equal(await image.digest(), IMAGE_B);
    assert.equal((await image.manifest()).config.digest, IMAGE_B_CONFIG);
    assert.deepEqual((await image.config()).rootfs.diff_ids, ['sha256:3610aa5267a210147ba6ca02cdd87610dfc08522de9c5f5015edd8ee14853fd8']);
  });

  it('resolves tag 3 (nested OCI index) and tag 4 (Docker manifest list) to their manifest', async () => {
    const layout = await open('test_index');
    for (const tag of ['3', '4']) {
      const image = await readLayoutImage(layout, { tag }, amd64);
      assert.equal(await image.digest(), IMAGE_A, `tag ${tag}`);
      assert.equal((await image.manifest()).config.digest, IMAGE_A_CONFIG, `tag ${tag}`);
    }
  });

  it('resolves a digest, which wins over a tag', async () => {
    const layout = await open('test_index');
    const image = await readLayoutImage(layout, { tag: '1', digest: IMAGE_B }, amd64);
    assert.equal(await image.digest(), IMAGE_B);
    const absent = `sha256:${'0'.repeat(64)}` as Digest;
    await assert.rejects(readLayoutImage(layout, { digest: absent }, amd64), failsWith('IMAGE_NOT_FOUND', /test_index/, new RegExp(absent)));
  });

  it('lists the available platforms when none fits', async () => {
    const layout = await open('test_index');
    await assert.rejects(
      readLayoutImage(layout, { tag: '3' }, { os: 'linux', architecture: 'arm64' }),
      failsWith('PLATFORM', /test_index:3/, /linux\/arm64/, /available: linux\/amd64\)/),
    );
  });

  it('reports a blob missing from the layout', async () => {
    // Its index.json lists a manifest whose blob is absent.
    const layout = await open('test_gc_image_unknown_mediatype');
    await assert.rejects(readLayoutImage(layout, {}, amd64), failsWith('LAYOUT', new RegExp(`blob ${IMAGE_B} is missing`)));
  });

  it('refuses an artifact whose config is not an image config', async () => {
    const layout = await open('test_index_media_type');
    await assert.rejects(
      readLayoutImage(layout, {}, amd64),
      failsWith('LAYOUT', /is not a container image/, /application\/vnd\.cncf\.helm\.config\.v1\+json/),
    );
  });
});

describe('readLayoutImage platform selection', () => {
  let work: string;
  let layout: OciLayout;
  const manifests = new Map<string, Descriptor>();

  /** A layout tagged `multi`: index → nested index → one manifest per platform, plus an attestation entry. */
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'image-reader-test-'));
    layout = await OciLayout.open(join(work, 'layout'), { create: true });
    const layerBytes = await readFile(join(fixtures, 'test_index/blobs/sha256', IMAGE_A_LAYER.slice(7)));
    const layer = await layout.writeBlob(layerBytes, MediaType.LayerGzip);
    const diffId = sha256(gunzipSync(layerBytes));
    const platforms: Platform[] = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ];
    const entries: Descriptor[] = [];
    for (const platform of platforms) {
      const config = await layout.writeJson({ ...platform, rootfs: { type: 'layers', diff_ids: [diffId] } }, MediaType.ImageConfig);
      const manifest = await layout.writeJson(
        { schemaVersion: 2, mediaType: MediaType.ImageManifest, config, layers: [layer] },
        MediaType.ImageManifest,
      );
      manifests.set(platform.architecture, manifest);
      entries.push({ ...manifest, platform });
    }
    const attestation = await layout.writeJson({ schemaVersion: 2, mediaType: MediaType.ImageManifest }, MediaType.ImageManifest);
    entries.push({ ...attestation, platform: { os: 'unknown', architecture: 'unknown' } });
    const nested = await layout.writeJson({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: entries }, MediaType.ImageIndex);
    const top = await layout.writeJson({ schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [nested] }, MediaType.ImageIndex);
    await layout.addImage(top, ['multi']);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const cases: Array<[string, Platform, string]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'amd64'],
    ['linux/arm64 (variant v8 implied)', { os: 'linux', architecture: 'arm64' }, 'arm64'],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'arm64'],
    ['linux/aarch64 as an alias', { os: 'linux', architecture: 'aarch64' }, 'arm64'],
    ['linux/arm (variant v7 implied)', { os: 'linux', architecture: 'arm' }, 'arm'],
  ];
  for (const [name, platform, expected] of cases) {
    it(`selects ${name}`, async () => {
      const image = await readLayoutImage(layout, { tag: 'multi' }, platform);
      assert.equal(await image.digest(), manifests.get(expected)?.digest);
      assert.equal((await image.config()).architecture, expected);
    });
  }

  it('names the real platforms when none fits', async () => {
    await assert.rejects(
      readLayoutImage(layout, { tag: 'multi' }, { os: 'linux', architecture: 'arm', variant: 'v6' }),
      failsWith('PLATFORM', /linux\/arm\/v6/, /\(available: linux\/amd64, linux\/arm64\/v8, linux\/arm\/v7\)$/),
    );
  });

  it('finds a digest listed only inside a nested index', async () => {
    const arm = manifests.get('arm') as Descriptor;
    const image = await readLayoutImage(layout, { digest: arm.digest }, { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.equal(await image.digest(), arm.digest);
    await assert.rejects(readLayoutImage(layout, { digest: arm.digest }, amd64), failsWith('PLATFORM', /available: linux\/arm\/v7/));
  });
});

describe('parseOciLayoutSource', () => {
  const cases: Array<[string, ReturnType<typeof parseOciLayoutSource>]> = [
    ['oci-layout:///srv/images', { dir: '/srv/images' }],
    ['oci-layout://./base:3.19', { dir: './base', tag: '3.19' }],
    ['/srv/a:b/layout', { dir: '/srv/a:b/layout' }],
    [
      `oci-layout:///srv/images:v1@sha256:${'a'.repeat(64)}`,
      { dir: '/srv/images', tag: 'v1', digest: `sha256:${'a'.repeat(64)}` },
    ],
  ];
  for (const [source, expected] of cases) {
    it(`parses ${source}`, () => {
      assert.deepEqual(parseOciLayoutSource(source), expected);
    });
  }

  it('rejects a malformed digest and an empty directory', () => {
    assert.throws(() => parseOciLayoutSource('oci-layout:///srv@sha256:abc'), /invalid digest/);
    assert.throws(() => parseOciLayoutSource('oci-layout://:tag'), /no directory/);
  });
});
