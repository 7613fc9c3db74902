/**
 * Tar entries whose names the file system cannot take (a NUL, a component or a path that is too
 * long) are an invalid layer or archive, reported with the Dockerfile line, never an internal error.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { hostPlatform } from '../../builder/plan/platform.js';
import { applyLayer } from '../../layers/apply-layer.js';
import { sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type ImageConfig, type Manifest } from '../../layers/types.js';
import { cleanErrorLine, runCli } from './cli-process.js';
import { rawTar, type RawEntry } from './raw-tar.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-tar-names-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const longComponent = 'c'.repeat(300);
const longPath = Array.from({ length: 25 }, () => 'd'.repeat(200)).join('/');

const hostile: { readonly label: string; readonly entry: RawEntry; readonly message: RegExp }[] = [
  { label: 'a NUL in a PAX path', entry: { name: 'placeholder', pax: { path: 'etc/pass\0wd' } }, message: /entry name "etc\/pass\\u0000wd" contains NUL/ },
  { label: 'a NUL in a PAX link target', entry: { name: 'link', type: '2', pax: { linkpath: '/bin/\0sh' } }, message: /entry link target "\/bin\/\\u0000sh" contains NUL/ },
  { label: 'a component longer than 255 bytes', entry: { name: 'placeholder', pax: { path: `dir/${longComponent}` } }, message: /has a component longer than 255 bytes/ },
  { label: 'a path longer than 4095 bytes', entry: { name: 'placeholder', pax: { path: longPath } }, message: /is longer than 4095 bytes/ },
];

async function scratchDir(): Promise<string> {
  const dir = await mkdtemp(path.join(work, 'root-'));
  return dir;
}

describe('tar entry names', () => {
  test('the hand-written tars are valid where their names are', async () => {
    const root = await scratchDir();
    const tar = rawTar([
      { name: 'dir', type: '5' },
      { name: 'placeholder', content: Buffer.from('hello'), pax: { path: 'dir/from-pax' } },
      { name: 'link', type: '2', pax: { linkpath: 'dir/from-pax' } },
    ]);
    await applyLayer(root, Readable.from([tar]));
    assert.equal(await readFile(path.join(root, 'dir/from-pax'), 'utf8'), 'hello');
    assert.equal(await readFile(path.join(root, 'link'), 'utf8'), 'hello');
  });

  for (const { label, entry, message } of hostile) {
    test(`a layer with ${label} is an invalid layer`, async () => {
      const root = await scratchDir();
      await assert.rejects(applyLayer(root, Readable.from([rawTar([entry])])), (err: unknown) => {
        assert.ok(err instanceof TsbuildError, String(err));
        assert.equal(err.code, 'INVALID_LAYER');
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

async function buildContext(name: string, dockerfile: string, files: Record<string, Buffer>): Promise<string> {
  const context = path.join(work, name);
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  for (const [file, content] of Object.entries(files)) await writeFile(path.join(context, file), content);
  return context;
}

async function build(context: string, extra: string[] = []): Promise<string | undefined> {
  const result = await runCli(['build', '-q', '--no-cache', ...extra, '-o', `type=oci,dest=${path.join(context, '..', `${path.basename(context)}-out`)}`, context], {
    TSBUILD_CACHE_DIR: path.join(work, 'cache'),
    TSBUILD_STORE: path.join(work, 'store'),
  }, 30_000);
  assert.equal(result.code, 5, `an invalid layer or archive is an image error: ${result.stderr}`);
  const line = cleanErrorLine(result.stderr);
  assert.ok(line, `not one clean error line:\n${result.stderr}`);
  return line;
}

describe('hostile tars in a build', () => {
  test('ADD of an archive with a NUL in a name names the archive and the line', async () => {
    const context = await buildContext('add-nul', 'FROM scratch\nADD evil.tar /x/\n', { 'evil.tar': rawTar([hostile[0]!.entry]) });
    const line = await build(context);
    assert.match(line!, /Dockerfile:2: invalid archive evil\.tar: entry name "etc\/pass\\u0000wd" contains NUL$/);
  });

  test('ADD of an archive with an overlong name names the archive and the line', async () => {
    const context = await buildContext('add-long', 'FROM scratch\nADD evil.tar /x/\n', { 'evil.tar': rawTar([hostile[2]!.entry]) });
    assert.match((await build(context))!, /Dockerfile:2: invalid archive evil\.tar: .*has a component longer than 255 bytes$/);
  });

  test('a base image layer with a NUL in a name fails at the step that unpacks it, naming the layer', async () => {
    const layoutDir = path.join(work, 'hostile-base');
    const layout = await OciLayout.open(layoutDir, { create: true });
    const tar = rawTar([{ name: 'etc', type: '5' }, hostile[0]!.entry]);
    const layer = await layout.writeBlob(tar, MediaType.Layer);
    const config: ImageConfig = { ...hostPlatform(), rootfs: { type: 'layers', diff_ids: [sha256Digest(tar)] }, config: {} };
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: await layout.writeJson(config, MediaType.ImageConfig), layers: [layer] };
    await layout.addImage(await layout.writeJson(manifest, MediaType.ImageManifest), ['latest']);
    const context = await buildContext('from-nul', 'FROM base\nCOPY f /f\n', { f: Buffer.from('x') });
    const line = await build(context, ['--build-context', `base=oci-layout://${layoutDir}`]);
    assert.ok(line!.endsWith(`/Dockerfile:2: invalid layer ${layer.digest}: entry name "etc/pass\\u0000wd" contains NUL`), line);
  });
});
