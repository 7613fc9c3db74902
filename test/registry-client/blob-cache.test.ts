/** Opening the registry blob cache: made when missing, opened as it is when present. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BlobCache } from '../../registry-client/blob-cache.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-blob-cache-'));
});
after(() => rm(work, { recursive: true, force: true }));

test('a missing cache is made an OCI layout; opening it again writes nothing', async () => {
  const dir = path.join(work, 'cache');
  await BlobCache.open(dir);
  assert.deepEqual((await readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
  const before = (await stat(dir)).mtimeMs;
  await new Promise((resolve) => setTimeout(resolve, 20));
  await BlobCache.open(dir);
  assert.equal((await stat(dir)).mtimeMs, before, 'no file was made or removed in the cache');
});

test('an empty directory becomes a cache, a foreign one is refused', async () => {
  const empty = path.join(work, 'empty');
  await mkdir(empty);
  await BlobCache.open(empty);
  assert.deepEqual((await readdir(empty)).sort(), ['blobs', 'index.json', 'oci-layout']);
  const foreign = path.join(work, 'foreign');
  await mkdir(foreign);
  await writeFile(path.join(foreign, 'notes.txt'), 'mine');
  await assert.rejects(BlobCache.open(foreign), /is not empty and is not an OCI image layout/);
});

test('a layout missing its index gets one', async () => {
  const dir = path.join(work, 'no-index');
  await BlobCache.open(dir);
  await rm(path.join(dir, 'index.json'));
  await BlobCache.open(dir);
  assert.ok((await readdir(dir)).includes('index.json'));
});
