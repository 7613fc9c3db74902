import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { TsbuildError } from '../../layers/errors.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, RefNameAnnotation, type Descriptor, type Digest, type Manifest } from '../../layers/types.js';
import { repoRoot } from '../support/repo-root.js';
import { requires } from '../support/requirement.js';

const run = promisify(execFile);

const root = repoRoot();
const sampleImage = join(root, 'test/fixtures/ggcr/layout/test_index_one_image');
const sampleManifest: Digest = 'sha256:98ceaf93e482fe91b9bfd6bba07137c098e49ee2d55e69f09fb6c951e75e0e46';

function installed(tool: string): boolean {
  return spawnSync(tool, ['--version']).error === undefined;
}

function sha256(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function refNames(entries: Descriptor[]): Array<string | undefined> {
  return entries.map((entry) => entry.annotations?.[RefNameAnnotation]);
}

/** Copies the sample image (manifest, config, layer) into `layout` through the public API. */
async function copySampleImage(layout: OciLayout): Promise<Descriptor> {
  const blob = (digest: string): Promise<Buffer> => readFile(join(sampleImage, 'blobs/sha256', digest.slice(7)));
  const manifestBytes = await blob(sampleManifest);
  const manifest = JSON.parse(manifestBytes.toString()) as Manifest;
  await layout.writeBlob(await blob(manifest.config.digest), manifest.config.mediaType);
  for (const layer of manifest.layers) await layout.writeBlob(await blob(layer.digest), layer.mediaType);
  return layout.writeBlob(manifestBytes, MediaType.ImageManifest);
}

async function waitForExit(child: ReturnType<typeof spawn>): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('OciLayout', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'oci-layout-test-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  describe('open', () => {
    it('creates oci-layout, an empty index.json and blobs/sha256', async () => {
      const dir = join(work, 'fresh', 'nested');
      const layout = await OciLayout.open(dir, { create: true });
      assert.equal(layout.dir, dir);
      assert.deepEqual(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      assert.equal(index.schemaVersion, 2);
      assert.deepEqual(index.manifests, []);
      assert.ok((await stat(join(dir, 'blobs/sha256'))).isDirectory());
      assert.deepEqual((await readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
    });

    it('makes a scratch layout (not synced) that stores and reads blobs like any other', async () => {
      const layout = await OciLayout.open(join(work, 'scratch'), { create: true, durable: false });
      const manifest = await copySampleImage(layout);
      const parsed = await layout.readJson<Manifest>(manifest.digest);
      for (const layer of parsed.layers) assert.equal(sha256(await layout.readBlob(layer.digest)), layer.digest);
      assert.equal((await text(layout.openBlob(parsed.config.digest))).length, parsed.config.size);
      await layout.addImage(manifest, ['scratch']);
      assert.deepEqual(refNames((await (await OciLayout.open(join(work, 'scratch'), { create: false })).readIndex()).manifests), ['scratch']);
      assert.deepEqual((await readdir(join(work, 'scratch'))).filter((name) => name.startsWith('.tmp-')), []);
    });

    it('reopens an existing layout without touching its index', async () => {
      const dir = join(work, 'reopen');
      const first = await OciLayout.open(dir, { create: true });
      await first.addImage(await first.writeJson({ a: 1 }, MediaType.ImageManifest), ['keep']);
      const again = await OciLayout.open(dir, { create: true });
      assert.deepEqual(refNames((await again.readIndex()).manifests), ['keep']);
    });

    it('opens a layout written by another tool', async () => {
      const layout = await OciLayout.open(sampleImage, { create: false });
      const index = await layout.readIndex();
      assert.equal(index.manifests[0]?.digest, sampleManifest);
    });

    it('refuses a directory that is not a layout', async () => {
      const dir = join(work, 'plain');
      await mkdir(dir);
      await writeFile(join(dir, 'notes.txt'), 'x');
      await assert.rejects(OciLayout.open(dir, { create: false }), (error: unknown) => {
        assert.ok(error instanceof TsbuildError);
        assert.equal(error.code, 'LAYOUT');
        assert.match(error.message, /not an OCI image layout.*no oci-layout file/);
        return true;
      });
      await assert.rejects(OciLayout.open(dir, { create: true }), /not empty and is not an OCI image layout/);
      await assert.rejects(OciLayout.open(join(work, 'absent'), { create: false }), /does not exist/);
    });

    it('refuses an unsupported layout version', async () => {
      const dir = join(work, 'v2');
      await mkdir(dir);
      await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
      await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
      await assert.rejects(OciLayout.open(dir, { create: false }), (error: unknown) => {
        assert.ok(error instanceof TsbuildError);
        assert.equal(error.code, 'LAYOUT');
        assert.match(error.message, /unsupported imageLayoutVersion "2\.0\.0"/);
        return true;
      });
    });
  });

  describe('blobs', () => {
    let layout: OciLayout;
    before(async () => {
      layout = await OciLayout.open(join(work, 'blobs'), { create: true });
    });

    it('stores a blob under its SHA-256 and describes it', async () => {
      const bytes = Buffer.from('layer bytes\n');
      const descriptor = await layout.writeBlob(bytes, MediaType.Layer);
      assert.deepEqual(descriptor, { mediaType: MediaType.Layer, digest: sha256(bytes), size: bytes.length });
      assert.equal(layout.path(descriptor.digest), join(layout.dir, 'blobs/sha256', sha256(bytes).slice(7)));
      assert.deepEqual(await readFile(layout.path(descriptor.digest)), bytes);
      assert.ok(await layout.has(descriptor.digest));
      assert.deepEqual(await layout.readBlob(descriptor.digest), bytes);
      assert.equal(await text(layout.openBlob(descriptor.digest)), 'layer bytes\n');
    });

    it('writes JSON compactly with keys in the given order', async () => {
      const descriptor = await layout.writeJson({ z: 1, a: [1, 'two'], m: { y: null } }, MediaType.ImageConfig);
      const stored = await readFile(layout.path(descriptor.digest), 'utf8');
      assert.equal(stored, '{"z":1,"a":[1,"two"],"m":{"y":null}}');
      assert.equal(descriptor.digest, sha256(stored));
      assert.deepEqual(await layout.readJson(descriptor.digest), { z: 1, a: [1, 'two'], m: { y: null } });
    });

    it('skips a blob that is already present and leaves no temp file', async () => {
      const bytes = Buffer.from('same content');
      const first = await layout.writeBlob(bytes, MediaType.Layer);
      const before = await stat(layout.path(first.digest));
      const second = await layout.writeBlob(bytes, MediaType.Layer);
      assert.deepEqual(second, first);
      const afterWrite = await stat(layout.path(first.digest));
      assert.equal(afterWrite.ino, before.ino);
      assert.equal(afterWrite.mtimeMs, before.mtimeMs);

      // A blob written by a streaming producer through tempPath/commit: the existing one wins.
      const temp = await layout.tempPath();
      assert.equal(dirname(temp), layout.dir);
      await writeFile(temp, bytes);
      await layout.commit(temp, first.digest);
      assert.equal(existsSync(temp), false);
      assert.equal((await stat(layout.path(first.digest))).ino, before.ino);
      assert.deepEqual((await readdir(layout.dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
    });

    it('commits a temp file by renaming it into place', async () => {
      const bytes = Buffer.from('streamed');
      const temp = await layout.tempPath();
      await writeFile(temp, bytes);
      const { ino } = await stat(temp);
      assert.equal(await layout.has(sha256(bytes)), false);
      await layout.commit(temp, sha256(bytes));
      assert.equal((await stat(layout.path(sha256(bytes)))).ino, ino);
      assert.equal(existsSync(temp), false);
    });

    it('detects corrupt and missing blobs', async () => {
      const descriptor = await layout.writeBlob(Buffer.from('original'), MediaType.Layer);
      await writeFile(layout.path(descriptor.digest), 'tampered');
      await assert.rejects(layout.readBlob(descriptor.digest), /does not match its digest/);
      await assert.rejects(text(layout.openBlob(descriptor.digest)), /does not match its digest/);

      const missing = sha256('never written');
      await assert.rejects(layout.readBlob(missing), (error: unknown) => {
        assert.ok(error instanceof TsbuildError);
        assert.equal(error.code, 'LAYOUT');
        assert.match(error.message, /is missing from the OCI layout/);
        return true;
      });
      await assert.rejects(text(layout.openBlob(missing)), /is missing from the OCI layout/);
    });

    it('rejects digests that are not sha256 hex', async () => {
      assert.throws(() => layout.path('sha256:../../../etc/passwd' as Digest), /malformed blob digest/);
      await assert.rejects(layout.readBlob(`sha256:${'A'.repeat(64)}` as Digest), /malformed blob digest/);
    });
  });

  describe('index', () => {
    it('re-tagging replaces the old entry and keeps all others', async () => {
      const layout = await OciLayout.open(join(work, 'tags'), { create: true });
      const one = await layout.writeJson({ image: 1 }, MediaType.ImageManifest);
      const two = await layout.writeJson({ image: 2 }, MediaType.ImageManifest);
      const foreign: Descriptor = { ...(await layout.writeJson({ image: 3 }, MediaType.ImageIndex)), annotations: { note: 'x' } };
      await layout.updateIndex((index) => ({ ...index, manifests: [...index.manifests, foreign] }));

      await layout.addImage(one, ['app:1', 'latest']);
      await layout.addImage(two, ['latest']);
      const index = await layout.readIndex();
      assert.deepEqual(index.manifests, [
        foreign,
        { ...one, annotations: { [RefNameAnnotation]: 'app:1' } },
        { ...two, annotations: { [RefNameAnnotation]: 'latest' } },
      ]);
      assert.equal(JSON.stringify(index), await readFile(join(layout.dir, 'index.json'), 'utf8'));
    });

    it('adds an untagged image once, keeping its own annotations', async () => {
      const layout = await OciLayout.open(join(work, 'untagged'), { create: true });
      const image: Descriptor = { ...(await layout.writeJson({ u: 1 }, MediaType.ImageManifest)), annotations: { a: 'b' } };
      await layout.addImage(image, []);
      await layout.addImage(image, []);
      await layout.addImage(image, ['t']);
      assert.deepEqual((await layout.readIndex()).manifests, [
        image,
        { ...image, annotations: { a: 'b', [RefNameAnnotation]: 't' } },
      ]);
    });

    it('rejects ref names outside the image-spec grammar', async () => {
      const layout = await OciLayout.open(join(work, 'badref'), { create: true });
      const image = await layout.writeJson({ b: 1 }, MediaType.ImageManifest);
      await assert.rejects(layout.addImage(image, ['has space']), /invalid image reference name/);
      await assert.rejects(layout.addImage(image, ['-leading']), /invalid image reference name/);
      assert.deepEqual((await layout.readIndex()).manifests, []);
    });

    it('keeps every entry when two processes add images concurrently, past a stale lock', async () => {
      const dir = join(work, 'concurrent');
      await OciLayout.open(dir, { create: true });
      const script = join(work, 'add-images.mjs');
      const moduleUrl = pathToFileURL(join(root, 'dist/layers/oci-layout.js')).href;
      await writeFile(
        script,
        `import { OciLayout } from ${JSON.stringify(moduleUrl)};
const [dir, name, count] = process.argv.slice(2);
const layout = await OciLayout.open(dir, { create: true });
for (let i = 0; i < Number(count); i++) {
  const image = await layout.writeJson({ writer: name, i }, 'application/vnd.oci.image.manifest.v1+json');
  await layout.addImage(image, [name + '-' + i]);
}
`,
      );
      // Both writers start against a lock left by a dead process, so both try to break it.
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      await writeFile(join(dir, 'index.json.lock'), JSON.stringify({ pid: dead, host: hostname(), token: 'old' }));
      const count = 40;
      const children = ['a', 'b'].map((name) => spawn(process.execPath, [script, dir, name, String(count)], { stdio: 'inherit' }));
      assert.deepEqual(await Promise.all(children.map(waitForExit)), [0, 0]);

      const layout = await OciLayout.open(dir, { create: false });
      const entries = (await layout.readIndex()).manifests;
      const expected = ['a', 'b'].flatMap((name) => Array.from({ length: count }, (_, i) => `${name}-${i}`));
      assert.deepEqual(refNames(entries).sort(), expected.sort());
      for (const entry of entries) {
        const [name, i] = (entry.annotations?.[RefNameAnnotation] ?? '').split('-');
        assert.deepEqual(await layout.readJson(entry.digest), { writer: name, i: Number(i) });
      }
      assert.deepEqual((await readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
    });

    it('breaks a lock left by a process that is gone', async () => {
      const layout = await OciLayout.open(join(work, 'stale'), { create: true });
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      assert.ok(dead !== undefined);
      const lock = join(layout.dir, 'index.json.lock');
      await writeFile(lock, JSON.stringify({ pid: dead, host: hostname(), token: 'old' }));
      const image = await layout.writeJson({ s: 1 }, MediaType.ImageManifest);
      const started = Date.now();
      await layout.addImage(image, ['after-crash']);
      assert.ok(Date.now() - started < 5000);
      assert.deepEqual(refNames((await layout.readIndex()).manifests), ['after-crash']);
      assert.equal(existsSync(lock), false);
    });

    it('waits for a lock held by a live process and times out clearly', async () => {
      const dir = join(work, 'held');
      await OciLayout.open(dir, { create: true });
      const layout = await OciLayout.open(dir, { create: false, lockTimeoutMs: 400 });
      const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
      const lock = join(dir, 'index.json.lock');
      try {
        await writeFile(lock, JSON.stringify({ pid: holder.pid, host: hostname(), token: 'live' }));
        const image = await layout.writeJson({ h: 1 }, MediaType.ImageManifest);
        const started = Date.now();
        await assert.rejects(layout.addImage(image, ['blocked']), (error: unknown) => {
          assert.ok(error instanceof TsbuildError);
          assert.equal(error.code, 'LAYOUT');
          assert.match(error.message, new RegExp(`timed out waiting for lock .*held by pid ${holder.pid}`));
          return true;
        });
        assert.ok(Date.now() - started >= 400);
        assert.deepEqual((await layout.readIndex()).manifests, []);

        // Once the holder is gone its lock is stale and the update goes through.
        holder.kill();
        await waitForExit(holder);
        await layout.addImage(image, ['unblocked']);
        assert.deepEqual(refNames((await layout.readIndex()).manifests), ['unblocked']);
      } finally {
        holder.kill();
      }
    });
  });

  describe('interoperability', () => {
    let dir: string;
    let manifest: Descriptor;
    before(async () => {
      dir = join(work, 'interop');
      const layout = await OciLayout.open(dir, { create: true });
      manifest = await copySampleImage(layout);
      await layout.addImage(manifest, ['v1', 'latest']);
      await layout.addImage(await copySampleImage(layout), ['v1']);
    });

    it('passes oci-image-tool validation', { skip: requires(!installed('oci-image-tool') && 'oci-image-tool not installed') }, async () => {
      // `--type imageLayout` is not implemented by this oci-image-tool; `--type image` detects a
      // layout and, without `--ref`, validates every entry of index.json.
      const { stdout } = await run('oci-image-tool', ['validate', '--type', 'image', dir]);
      assert.match(stdout, /Validation succeeded/);
    });

    it('is readable by skopeo by tag', { skip: requires(!installed('skopeo') && 'skopeo not installed') }, async () => {
      const { stdout } = await run('skopeo', ['inspect', `oci:${dir}:v1`]);
      const info = JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string };
      assert.equal(info.Digest, manifest.digest);
      assert.deepEqual(info.Layers, ['sha256:492b89b9dd3cda4596f94916d17f6901455fb8bd7f4c5a2a90df8d39c90f48a0']);
      assert.equal(info.Architecture, 'amd64');
    });

    it('is readable by umoci', { skip: requires(!installed('umoci') && 'umoci not installed') }, async () => {
      const { stdout } = await run('umoci', ['ls', '--layout', dir]);
      assert.deepEqual(stdout.trim().split('\n').sort(), ['latest', 'v1']);
      await run('umoci', ['gc', '--layout', dir]);
    });
  });
});
