import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import tarStream from 'tar-stream';
import { TsbuildError } from '../../layers/errors.js';
import { writeLayoutTar } from '../../layers/layout-tar.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Descriptor, type Manifest } from '../../layers/types.js';
import { repoRoot } from '../support/repo-root.js';
import { requires } from '../support/requirement.js';

const run = promisify(execFile);

const sampleImage = join(repoRoot(), 'test/fixtures/ggcr/layout/test_index_one_image');
const sampleManifest = '98ceaf93e482fe91b9bfd6bba07137c098e49ee2d55e69f09fb6c951e75e0e46';

interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  content: Buffer;
}

async function readTar(path: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const extract = tarStream.extract();
  const collected = (async () => {
    for await (const entry of extract) {
      const { name, type, mode, uid, gid, mtime } = entry.header;
      entries.push({ name, type, mode, uid, gid, mtime: mtime.getTime(), content: await buffer(entry) });
    }
  })();
  await pipeline(createReadStream(path), extract);
  await collected;
  return entries;
}

/** A layout holding the sample image tagged `v1`, built through the public API. */
async function buildLayout(dir: string): Promise<{ layout: OciLayout; manifest: Descriptor }> {
  const layout = await OciLayout.open(dir, { create: true });
  const blob = (hex: string): Promise<Buffer> => readFile(join(sampleImage, 'blobs/sha256', hex));
  const manifestBytes = await blob(sampleManifest);
  const parsed = JSON.parse(manifestBytes.toString()) as Manifest;
  await layout.writeBlob(await blob(parsed.config.digest.slice(7)), parsed.config.mediaType);
  for (const layer of parsed.layers) await layout.writeBlob(await blob(layer.digest.slice(7)), layer.mediaType);
  const manifest = await layout.writeBlob(manifestBytes, MediaType.ImageManifest);
  await layout.addImage(manifest, ['v1']);
  return { layout, manifest };
}

function installed(tool: string): boolean {
  return spawnSync(tool, ['--version']).error === undefined;
}

describe('writeLayoutTar', () => {
  let work: string;
  let layout: OciLayout;
  let manifest: Descriptor;
  let archive: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'layout-tar-test-'));
    ({ layout, manifest } = await buildLayout(join(work, 'layout')));
    // Leftovers that are not part of the layout must stay out of the archive.
    await writeFile(join(layout.dir, '.tmp-leftover'), 'partial');
    await mkdir(join(work, 'out'));
    archive = join(work, 'out', 'image.tar');
    await writeLayoutTar(layout, archive);
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('holds oci-layout, index.json and the sorted blobs with fixed metadata', async () => {
    const entries = await readTar(archive);
    const blobNames = (await readdir(join(layout.dir, 'blobs/sha256'))).sort().map((hex) => `blobs/sha256/${hex}`);
    assert.equal(blobNames.length, 3);
    assert.deepEqual(
      entries.map((entry) => entry.name),
      ['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/', ...blobNames],
    );
    for (const entry of entries) {
      const path = join(layout.dir, entry.name);
      assert.deepEqual([entry.uid, entry.gid, entry.mtime], [0, 0, 0], entry.name);
      if (entry.name.endsWith('/')) {
        assert.deepEqual([entry.type, entry.mode], ['directory', 0o755]);
      } else {
        assert.deepEqual([entry.type, entry.mode], ['file', 0o644]);
        assert.deepEqual(entry.content, await readFile(path), entry.name);
      }
    }
    assert.deepEqual(await readdir(join(work, 'out')), ['image.tar']);
  });

  it('writes the same bytes for the same content, whatever the files’ times', async () => {
    const other = await buildLayout(join(work, 'other'));
    const blob = join(other.layout.dir, 'blobs/sha256', sampleManifest);
    await utimes(blob, new Date('2001-02-03T04:05:06Z'), new Date('2001-02-03T04:05:06Z'));
    const second = join(work, 'out', 'second.tar');
    await writeLayoutTar(other.layout, second);
    assert.deepEqual(await readFile(second), await readFile(archive));
    await rm(second);
  });

  it('replaces an existing file only when complete', async () => {
    const dest = join(work, 'out', 'replace.tar');
    await writeFile(dest, 'old content');
    await writeLayoutTar(layout, dest);
    assert.deepEqual(await readFile(dest), await readFile(archive));
    await rm(dest);
    await assert.rejects(writeLayoutTar(layout, join(work, 'missing-dir', 'x.tar')), (error: unknown) => {
      assert.ok(error instanceof TsbuildError);
      assert.equal(error.code, 'OUTPUT');
      assert.match(error.message, /cannot write .*missing-dir\/x\.tar: ENOENT/);
      return true;
    });
    assert.deepEqual((await readdir(join(work, 'out'))).sort(), ['image.tar']);
  });

  it('is an oci-archive skopeo reads by tag', { skip: requires(!installed('skopeo') && 'skopeo not installed') }, async () => {
    const { stdout } = await run('skopeo', ['inspect', `oci-archive:${archive}:v1`]);
    const info = JSON.parse(stdout) as { Digest: string; Layers: string[] };
    assert.equal(info.Digest, manifest.digest);
    assert.deepEqual(info.Layers, ['sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0']);
  });
});
