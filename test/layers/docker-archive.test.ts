import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { writeDockerArchive } from '../../layers/docker-archive.js';
import { readDockerArchive } from '../../layers/docker-archive-read.js';
import { writeImage } from '../../layers/layout-write.js';
import type { Image } from '../../layers/image.js';
import { TsbuildError } from '../../layers/errors.js';
import { layoutImage, readLayoutImage } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type Digest } from '../../layers/types.js';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';
import { requires } from '../support/requirement.js';

const run = promisify(execFile);

const sampleBlobs = join(repoRoot(), 'test/fixtures/ggcr/layout/test_index/blobs/sha256');
// Two gzip layers of the go-containerregistry sample layout.
const GZIP_LAYER_A = 'dc52c6e48a1d51a96047b059f16889bc889c4b4c28f3b36b3f93187f62fc0b2b';
const GZIP_LAYER_B = '321460fa87fd42433950b42d04b7aff249f4ed960d43404a9f699886906cc9d3';

function sha256(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function installed(tool: string): boolean {
  return spawnSync(tool, ['--version']).error === undefined;
}

async function readTar(path: string): Promise<Map<string, { content: Buffer; header: tarStream.Header }>> {
  const entries = new Map<string, { content: Buffer; header: tarStream.Header }>();
  const extract = tarStream.extract();
  const collected = (async () => {
    for await (const entry of extract) entries.set(entry.header.name, { header: entry.header, content: await buffer(entry) });
  })();
  await pipeline(createReadStream(path), extract);
  await collected;
  return entries;
}

interface ArchiveManifest {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function failsWith(code: string, pattern: RegExp) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof TsbuildError, String(error));
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('writeDockerArchive', () => {
  let work: string;
  let layout: OciLayout;
  let config: Descriptor;
  let layers: Descriptor[];
  let image: Image;
  const repoTags = ['app:1', 'registry.example:5000/team/app'];

  /** An image of the layout with `config` and these layers. */
  async function imageOf(imageLayers: Descriptor[]): Promise<Image> {
    const manifest = await layout.writeJson({ schemaVersion: 2, mediaType: MediaType.ImageManifest, config, layers: imageLayers }, MediaType.ImageManifest);
    return layoutImage(layout, manifest);
  }
  let diffIds: Digest[];
  let archive: string;

  /**
   * Image: gzip layer A, layer B stored uncompressed, then A again (a repeated diff_id must still
   * get its own place in the layer chain).
   */
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'docker-archive-test-'));
    layout = await OciLayout.open(join(work, 'layout'), { create: true });
    const gzA = await readFile(join(sampleBlobs, GZIP_LAYER_A));
    const tarB = gunzipSync(await readFile(join(sampleBlobs, GZIP_LAYER_B)));
    const layerA = await layout.writeBlob(gzA, MediaType.LayerGzip);
    const layerB = await layout.writeBlob(tarB, MediaType.Layer);
    diffIds = [sha256(gunzipSync(gzA)), sha256(tarB), sha256(gunzipSync(gzA))];
    config = await layout.writeJson(
      {
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/foo'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: [{ created_by: 'a' }, { created_by: 'b' }, { created_by: 'a again' }],
      },
      MediaType.ImageConfig,
    );
    layers = [layerA, layerB, layerA];
    image = await imageOf(layers);
    archive = join(work, 'app.tar');
    await writeDockerArchive(image, repoTags, archive);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('writes manifest.json, repositories, the config and uncompressed layers', async () => {
    const entries = await readTar(archive);
    const manifestJson = entries.get('manifest.json')?.content.toString() ?? '';
    const [manifest, ...others] = JSON.parse(manifestJson) as ArchiveManifest[];
    assert.ok(manifest);
    assert.equal(others.length, 0);
    assert.equal(manifest.Config, `${config.digest.slice(7)}.json`);
    assert.deepEqual(manifest.RepoTags, ['app:1', 'registry.example:5000/team/app:latest']);
    assert.deepEqual(entries.get(manifest.Config)?.content, await layout.readBlob(config.digest));

    // Every layer file is the uncompressed tar, so its SHA-256 is the config's diff_id.
    assert.equal(manifest.Layers.length, 3);
    assert.equal(new Set(manifest.Layers).size, 3);
    manifest.Layers.forEach((path, index) => {
      assert.match(path, /^[0-9a-f]{64}\/layer\.tar$/);
      assert.equal(sha256(entries.get(path)?.content ?? Buffer.alloc(0)), diffIds[index]);
    });
    assert.equal(manifest.Layers[0]?.slice(0, 64), diffIds[0]?.slice(7));

    const top = manifest.Layers[2]?.slice(0, 64);
    assert.deepEqual(JSON.parse(entries.get('repositories')?.content.toString() ?? ''), {
      app: { '1': top },
      'registry.example:5000/team/app': { latest: top },
    });

    const names = [...entries.keys()];
    assert.deepEqual(names.slice(0, 3), ['manifest.json', 'repositories', manifest.Config]);
    for (const { header } of entries.values()) {
      assert.deepEqual([header.uid, header.gid, header.mtime.getTime()], [0, 0, 0], header.name);
    }
    assert.deepEqual((await readdir(work)).sort(), ['app.tar', 'layout']);
  });

  it('reads back as the same image, which writes out as a valid OCI layout', async () => {
    const back = await readDockerArchive(archive, 'app:1');
    assert.deepEqual(await back.rawConfig(), await image.rawConfig());
    assert.equal((await back.manifest()).config.digest, config.digest);
    const layers = await back.layers();
    assert.equal(layers.length, 3);
    for (const [i, layer] of layers.entries()) {
      assert.equal(await layer.diffId(), diffIds[i]);
      // docker save stores layers uncompressed: each one's digest is its diff_id.
      assert.equal(await layer.digest(), diffIds[i]);
      assert.equal(sha256(await buffer(await layer.uncompressed())), diffIds[i]);
    }
    assert.equal(await (await readDockerArchive(archive, 'registry.example:5000/team/app')).digest(), await back.digest());
    await assert.rejects(readDockerArchive(archive, 'other:1'), failsWith('ARCHIVE', /no image tagged other:1/));

    const out = await OciLayout.open(join(work, 'from-archive'), { create: true });
    await out.addImage(await writeImage(out, back), ['back']);
    await validateLayout(out.dir);
    await rm(out.dir, { recursive: true });
  });

  it('is deterministic', async () => {
    const second = join(work, 'again.tar');
    await writeDockerArchive(image, repoTags, second);
    assert.deepEqual(await readFile(second), await readFile(archive));
    await rm(second);
  });

  it('copies with skopeo into an OCI layout with the same config and diff_ids', { skip: requires(!installed('skopeo') && 'skopeo not installed') }, async () => {
    const dest = join(work, 'copied');
    await run('skopeo', ['--insecure-policy', 'copy', `docker-archive:${archive}`, `oci:${dest}:copied`]);
    const copied = await readLayoutImage(await OciLayout.open(dest, { create: false }), { tag: 'copied' }, {
      os: 'linux',
      architecture: 'amd64',
    });
    assert.equal((await copied.manifest()).config.digest, config.digest);
    assert.deepEqual((await copied.config()).rootfs.diff_ids, diffIds);
    // skopeo recompresses layers for an OCI destination: their uncompressed content must be the same.
    const uncompressed: Digest[] = [];
    for (const layer of await copied.layers()) uncompressed.push(sha256(await buffer(await layer.uncompressed())));
    assert.deepEqual(uncompressed, diffIds);

    // The second tag selects the same image.
    const byTag = join(work, 'by-tag');
    await run('skopeo', ['--insecure-policy', 'copy', `docker-archive:${archive}:registry.example:5000/team/app:latest`, `oci:${byTag}:t`]);
    const tagged = await readLayoutImage(await OciLayout.open(byTag, { create: false }), { tag: 't' }, { os: 'linux', architecture: 'amd64' });
    assert.equal((await tagged.manifest()).config.digest, config.digest);
  });

  it('refuses layers it cannot decompress and diff_ids that do not match', async () => {
    const dest = join(work, 'refused.tar');
    const zstd: Descriptor = await layout.writeBlob(Buffer.from('not really zstd'), MediaType.LayerZstd);
    await assert.rejects(
      writeDockerArchive(await imageOf([zstd, layers[1]!, zstd]), repoTags, dest),
      failsWith('OUTPUT', /cannot decompress layers of media type application\/vnd\.oci\.image\.layer\.v1\.tar\+zstd/),
    );
    const swapped = [layers[1]!, layers[0]!, layers[2]!];
    await assert.rejects(writeDockerArchive(await imageOf(swapped), repoTags, dest), failsWith('OUTPUT', /but the config lists diff_id/));
    await assert.rejects(
      writeDockerArchive(await imageOf(layers.slice(1)), repoTags, dest),
      failsWith('OUTPUT', /2 layers but its config lists 3 diff_ids/),
    );
    assert.equal(existsSync(dest), false);
  });

  it('refuses references docker load would not accept', async () => {
    const dest = join(work, 'badtag.tar');
    for (const tag of ['App:1', `app@sha256:${'a'.repeat(64)}`, 'app:-x', 'bad host!/app:1']) {
      await assert.rejects(writeDockerArchive(image, [tag], dest), failsWith('OUTPUT', /invalid image reference/));
    }
    assert.equal(existsSync(dest), false);
  });
});
