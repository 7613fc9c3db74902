import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { repoRoot } from './repo-root.js';
import { skopeoInspect, unpackWithUmoci, validateLayout } from './validate-layout.js';

const execFileAsync = promisify(execFile);

const ggcrLayout = join(repoRoot(), 'test', 'fixtures', 'ggcr-validate', 'test_index_one_image');
const refName = 'org.opencontainers.image.ref.name';

type Compression = 'none' | 'gzip' | 'zstd';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

interface LayerSpec {
  files: Record<string, string>;
  compression: Compression;
}

interface ImageSpec {
  architecture: string;
  layers: LayerSpec[];
  env?: string[];
  /** Replaces the computed diff_ids, to build a broken image. */
  diffIds?: (computed: string[], layers: Descriptor[]) => string[];
}

const layerMediaType: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

function sha256(content: Buffer): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`;
}

/** A tar archive of `files`, made by the tar command. */
async function tarOf(files: Record<string, string>, scratch: string): Promise<Buffer> {
  const source = await mkdtemp(join(scratch, 'src-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(source, name)), { recursive: true });
    await writeFile(join(source, name), content);
  }
  const archive = `${source}.tar`;
  const owner = ['--owner=0', '--group=0', '--numeric-owner'];
  await execFileAsync('tar', ['--sort=name', ...owner, '-C', source, '-cf', archive, '.']);
  return readFile(archive);
}

async function compress(tar: Buffer, compression: Compression, scratch: string): Promise<Buffer> {
  if (compression === 'none') return tar;
  if (compression === 'gzip') return gzipSync(tar);
  const path = join(await mkdtemp(join(scratch, 'zst-')), 'layer.tar');
  await writeFile(path, tar);
  await execFileAsync('zstd', ['-q', path, '-o', `${path}.zst`]);
  return readFile(`${path}.zst`);
}

/** Writes an OCI layout by hand: every blob stored under its SHA-256. */
class LayoutWriter {
  constructor(readonly dir: string) {}

  async init(): Promise<this> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return this;
  }

  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  async blob(mediaType: string, content: Buffer): Promise<Descriptor> {
    const digest = sha256(content);
    await writeFile(this.blobPath(digest), content);
    return { mediaType, digest, size: content.length };
  }

  json(mediaType: string, value: unknown): Promise<Descriptor> {
    return this.blob(mediaType, Buffer.from(JSON.stringify(value)));
  }

  async image(spec: ImageSpec): Promise<{ manifest: Descriptor; config: Descriptor; layers: Descriptor[] }> {
    const scratch = await mkdtemp(join(this.dir, '..', 'scratch-'));
    const layers: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of spec.layers) {
      const tar = await tarOf(layer.files, scratch);
      diffIds.push(sha256(tar));
      layers.push(await this.blob(layerMediaType[layer.compression], await compress(tar, layer.compression, scratch)));
    }
    await rm(scratch, { recursive: true, force: true });
    const config = await this.json('application/vnd.oci.image.config.v1+json', {
      architecture: spec.architecture,
      os: 'linux',
      config: { Env: spec.env ?? ['PATH=/usr/bin:/bin'] },
      rootfs: { type: 'layers', diff_ids: spec.diffIds ? spec.diffIds(diffIds, layers) : diffIds },
    });
    const manifestType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = await this.json(manifestType, { schemaVersion: 2, mediaType: manifestType, config, layers });
    return { manifest: { ...manifest, platform: { os: 'linux', architecture: spec.architecture } }, config, layers };
  }

  async index(manifests: Descriptor[]): Promise<Descriptor> {
    const indexType = 'application/vnd.oci.image.index.v1+json';
    return this.json(indexType, { schemaVersion: 2, mediaType: indexType, manifests });
  }

  async writeIndexJson(tagged: Record<string, Descriptor>): Promise<void> {
    const manifests = Object.entries(tagged).map(([tag, descriptor]) => ({
      ...descriptor,
      annotations: { [refName]: tag },
    }));
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
  }
}

interface Broken {
  amd64?: Partial<ImageSpec>;
  arm64?: Partial<ImageSpec>;
  zstd?: Partial<ImageSpec>;
}

/**
 * A layout with tag v1 (amd64: a gzip and a plain layer), tag multi (a nested index of v1 and
 * an arm64 image) and tag zstd (one zstd layer); `broken` alters one image's spec.
 */
async function buildLayout(dir: string, broken: Broken = {}) {
  const writer = await new LayoutWriter(dir).init();
  const amd64 = await writer.image({
    architecture: 'amd64',
    layers: [
      { files: { 'hello.txt': 'hello\n', 'dir/a.txt': 'a\n' }, compression: 'gzip' },
      { files: { 'dir/b.txt': 'b\n' }, compression: 'none' },
    ],
    ...broken.amd64,
  });
  const arm64 = await writer.image({
    architecture: 'arm64',
    layers: [{ files: { 'arch.txt': 'arm64\n' }, compression: 'gzip' }],
    ...broken.arm64,
  });
  const zstd = await writer.image({
    architecture: 'amd64',
    layers: [{ files: { 'z.txt': 'zstd\n' }, compression: 'zstd' }],
    ...broken.zstd,
  });
  const multi = await writer.index([amd64.manifest, arm64.manifest]);
  const { platform: _, ...v1 } = amd64.manifest;
  await writer.writeIndexJson({ v1, multi, zstd: zstd.manifest });
  return { writer, amd64, arm64, zstd, multi };
}

/** Rejects with an AssertionError whose message matches `pattern`. */
async function assertRejected(dir: string, pattern: RegExp): Promise<void> {
  await assert.rejects(validateLayout(dir), (error: unknown) => {
    assert.ok(error instanceof assert.AssertionError, `not an AssertionError: ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

let scratch: string;
let counter = 0;
const freshDir = (): string => join(scratch, `layout-${++counter}`);

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tsbuild-validate-layout-test-'));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('validateLayout on valid layouts', () => {
  test('the go-containerregistry sample with one untagged image is valid', async () => {
    await validateLayout(ggcrLayout);
  });

  test('a hand-built layout with a nested index, plain, gzip and zstd layers is valid', async () => {
    const dir = freshDir();
    await buildLayout(dir);
    await validateLayout(dir);
  });
});

describe('tool helpers', () => {
  test('unpackWithUmoci extracts both layers of v1; cleanup removes the rootfs', async () => {
    const dir = freshDir();
    await buildLayout(dir);
    const { rootfs, cleanup } = await unpackWithUmoci(dir, 'v1');
    try {
      assert.equal(await readFile(join(rootfs, 'hello.txt'), 'utf8'), 'hello\n');
      assert.equal(await readFile(join(rootfs, 'dir', 'a.txt'), 'utf8'), 'a\n');
      assert.equal(await readFile(join(rootfs, 'dir', 'b.txt'), 'utf8'), 'b\n');
    } finally {
      await cleanup();
    }
    assert.equal(existsSync(rootfs), false);
  });

  test('unpackWithUmoci rejects an unknown tag', async () => {
    const dir = freshDir();
    await buildLayout(dir);
    await assert.rejects(unpackWithUmoci(dir, 'nope'), /umoci raw unpack/);
  });

  test('skopeoInspect reports the manifest digest, platform and layers of a tag', async () => {
    const dir = freshDir();
    const { amd64 } = await buildLayout(dir);
    const inspected = await skopeoInspect(`oci:${dir}:v1`);
    assert.equal(inspected.Digest, amd64.manifest.digest);
    assert.equal(inspected.Architecture, 'amd64');
    assert.deepEqual(inspected.Layers, amd64.layers.map((layer) => layer.digest));
  });
});

describe('validateLayout rejects broken layouts', () => {
  test('a layer blob whose bytes no longer match its digest', async () => {
    const dir = freshDir();
    const { writer, amd64 } = await buildLayout(dir);
    const path = writer.blobPath(amd64.layers[0]?.digest ?? '');
    const bytes = await readFile(path);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(path, bytes);
    await assertRejected(dir, /layers\[0\] \(sha256:\w+…\): blob content has digest sha256:\w+, not sha256:/);
  });

  test('a blob whose size differs from its descriptor', async () => {
    const dir = freshDir();
    const { writer, zstd } = await buildLayout(dir);
    await writeFile(writer.blobPath(zstd.layers[0]?.digest ?? ''), 'short');
    await assertRejected(dir, /layers\[0\] \(sha256:\w+…\): blob is 5 bytes but the descriptor says \d+/);
  });

  test('a missing config blob of an image reached only through the nested index', async () => {
    const dir = freshDir();
    const { writer, arm64 } = await buildLayout(dir);
    await rm(writer.blobPath(arm64.config.digest));
    await assertRejected(dir, new RegExp(`manifests\\[1\\] .*> config .*: blob ${arm64.config.digest} is missing`));
  });

  test('a gzip layer whose diff_id is not the digest of the uncompressed tar', async () => {
    const dir = freshDir();
    const wrong = sha256(Buffer.from('not the layer'));
    await buildLayout(dir, { amd64: { diffIds: (ids) => [wrong, ...ids.slice(1)] } });
    const pattern = `layers\\[0\\] .*: uncompressed digest sha256:\\w+ differs from diff_ids\\[0\\] ${wrong}`;
    await assertRejected(dir, new RegExp(pattern));
  });

  test('a zstd layer whose diff_id is the digest of the compressed blob', async () => {
    const dir = freshDir();
    await buildLayout(dir, { zstd: { diffIds: (_, layers) => layers.map((layer) => layer.digest) } });
    await assertRejected(dir, /layers\[0\] .*: uncompressed digest sha256:\w+ differs from diff_ids\[0\]/);
  });

  test('a config with more diff_ids than layers', async () => {
    const dir = freshDir();
    await buildLayout(dir, { arm64: { diffIds: (ids) => [...ids, ...ids] } });
    await assertRejected(dir, /config has 2 diff_ids for 1 layers/);
  });

  test('a config that breaks the image-spec rules', async () => {
    const dir = freshDir();
    await buildLayout(dir, { amd64: { env: ['NOVALUE'] } });
    await assertRejected(dir, /> config .*: config \/config\/Env\/0: "NOVALUE" must be NAME=value/);
  });

  test('a layer that decompresses but is no tar archive is caught by umoci', async () => {
    const dir = freshDir();
    const writer = await new LayoutWriter(dir).init();
    const notTar = Buffer.from('this is not a tar archive\n'.repeat(40));
    const layer = await writer.blob('application/vnd.oci.image.layer.v1.tar+gzip', gzipSync(notTar));
    const config = await writer.json('application/vnd.oci.image.config.v1+json', {
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(notTar)] },
    });
    const manifestType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = await writer.json(manifestType, {
      schemaVersion: 2,
      mediaType: manifestType,
      config,
      layers: [layer],
    });
    await writer.writeIndexJson({ broken: manifest });
    await assertRejected(dir, /umoci raw unpack .* failed:[\s\S]*invalid tar header/);
  });
});
