import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { CacheEntry } from '../../../builder/cache/cache-store.js';
import { defaultBuildCacheDir, LocalCacheStore, type CacheRecord } from '../../../builder/cache/local-store.js';
import { blobLayer } from '../../../layers/lazy-image.js';
import { MediaType, type Digest } from '../../../layers/types.js';

const temps: string[] = [];
after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-cache-store-'));
  temps.push(dir);
  return dir;
}

const sha256 = (bytes: Uint8Array): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const randomKey = (): Digest => `sha256:${randomBytes(32).toString('hex')}`;

interface TestBlob {
  path: string;
  digest: Digest;
  size: number;
}

async function writeBlob(dir: string, content: Buffer = randomBytes(1000)): Promise<TestBlob> {
  const digest = sha256(content);
  const path = join(dir, `blob-${randomBytes(6).toString('hex')}`);
  await writeFile(path, content);
  return { path, digest, size: content.length };
}

function recordFor(blob: TestBlob | undefined, createdBy = 'RUN make'): CacheRecord {
  const record: CacheRecord = {
    version: 1,
    history: blob === undefined ? { created_by: createdBy, empty_layer: true } : { created_by: createdBy },
    inputs: { instruction: createdBy },
    createdAt: '2024-01-01T00:00:00Z',
  };
  if (blob !== undefined) {
    record.layer = { descriptor: { mediaType: MediaType.LayerGzip, digest: blob.digest, size: blob.size }, diffId: randomKey() };
  }
  return record;
}

/** A cache entry for `record` whose layer (if any) is the file at `blobPath`. */
function entryOf(record: CacheRecord, blobPath?: string): CacheEntry {
  if (blobPath === undefined) return { record };
  const descriptor = record.layer?.descriptor ?? { mediaType: MediaType.LayerGzip, digest: randomKey(), size: 0 };
  return { record, layer: blobLayer({ descriptor, diffId: randomKey(), open: async () => createReadStream(blobPath), localPath: async () => blobPath }) };
}

async function fileDigest(path: string): Promise<Digest> {
  return sha256(await readFile(path));
}

/** Asserts a hit whose blob is in the store with the right content. */
async function assertHit(store: LocalCacheStore, key: Digest, expected: CacheRecord): Promise<void> {
  const entry = await store.get(key);
  assert.deepEqual(entry?.record, expected);
  assert.equal(entry.layer === undefined, expected.layer === undefined);
  if (expected.layer !== undefined) {
    assert.equal(await fileDigest(store.blobPath(expected.layer.descriptor.digest)), expected.layer.descriptor.digest);
  }
}

test('put then get returns the record, with the blob hard-linked into the store', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  const key = randomKey();
  const record = recordFor(blob);
  assert.equal(await store.get(key), undefined);
  await store.put(key, entryOf(record, blob.path));
  await assertHit(store, key, record);
  assert.equal(store.blobPath(blob.digest), join(dir, 'cache', 'blobs', 'sha256', blob.digest.slice(7)));
  assert.equal((await stat(store.blobPath(blob.digest))).ino, (await stat(blob.path)).ino);
  // A second instance (another build) sees it too.
  await assertHit(await LocalCacheStore.open(join(dir, 'cache')), key, record);
  assert.deepEqual(await store.usage(), {
    records: 1,
    blobs: 1,
    bytes: blob.size + (await stat(join(dir, 'cache', 'records', `${key.slice(7)}.json`))).size,
  });
  await store.release();
});

test('a step without a layer is cached without a blob; a blob must come exactly with a layer', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const key = randomKey();
  const record = recordFor(undefined, 'ENV A=1');
  await store.put(key, entryOf(record));
  await assertHit(store, key, record);
  const blob = await writeBlob(dir);
  await assert.rejects(store.put(randomKey(), entryOf(record, blob.path)), { code: 'CACHE_RECORD' });
  await assert.rejects(store.put(randomKey(), entryOf(recordFor(blob))), { code: 'CACHE_RECORD' });
  await assert.rejects(store.put(randomKey(), entryOf({ ...record, version: 2 } as unknown as CacheRecord)), { code: 'CACHE_RECORD' });
  await assert.rejects(store.get('sha256:../../etc' as Digest), { code: 'DIGEST' });
  assert.equal((await store.usage()).records, 1);
});

test('a blob whose content does not match its descriptor is refused and nothing is left behind', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  await writeFile(blob.path, randomBytes(1000));
  const key = randomKey();
  await assert.rejects(store.put(key, entryOf(recordFor(blob), blob.path)), { code: 'DIGEST_MISMATCH' });
  assert.equal(await store.get(key), undefined);
  assert.deepEqual(await store.usage(), { records: 0, blobs: 0, bytes: 0 });
  assert.deepEqual((await readdir(join(dir, 'cache'))).filter((name) => name.startsWith('.tmp-')), []);
});

test('a record whose blob is missing or truncated is a miss and is removed', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  const key = randomKey();
  const record = recordFor(blob);
  await store.put(key, entryOf(record, blob.path));
  await rm(store.blobPath(blob.digest));
  assert.equal(await store.get(key), undefined);
  assert.equal((await store.usage()).records, 0);
  // Putting it again repairs it.
  await store.put(key, entryOf(record, blob.path));
  await assertHit(store, key, record);

  const other = await writeBlob(dir);
  const otherKey = randomKey();
  await store.put(otherKey, entryOf(recordFor(other), other.path));
  await writeFile(store.blobPath(other.digest), randomBytes(10));
  assert.equal(await store.get(otherKey), undefined);
  assert.equal(existsSync(store.blobPath(other.digest)), false);
  assert.deepEqual({ ...(await store.usage()), bytes: 0 }, { records: 1, blobs: 1, bytes: 0 });
  await store.release();
});

test('the first intact record of a key wins; the loser blob is garbage at the next eviction', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const [first, second] = [await writeBlob(dir), await writeBlob(dir)];
  const key = randomKey();
  const winner = recordFor(first);
  await store.put(key, entryOf(winner, first.path));
  await store.put(key, entryOf(recordFor(second), second.path));
  await assertHit(store, key, winner);
  const result = await store.enforceLimit(Number.MAX_SAFE_INTEGER);
  assert.equal(result.evictedRecords, 0);
  assert.equal(existsSync(store.blobPath(second.digest)), false);
  assert.equal(existsSync(store.blobPath(first.digest)), true);
  // An orphan blob (as a crash between commit and record would leave) goes too.
  const orphan = await writeBlob(dir);
  await writeFile(store.blobPath(orphan.digest), await readFile(orphan.path));
  assert.equal((await store.enforceLimit(Number.MAX_SAFE_INTEGER)).freedBytes, orphan.size);
  assert.equal(existsSync(store.blobPath(orphan.digest)), false);
  await store.release();
});

test('eviction goes by last use, set explicitly', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const entries: { key: Digest; blob: TestBlob; record: CacheRecord }[] = [];
  for (let i = 0; i < 4; i++) {
    const blob = await writeBlob(dir);
    const key = randomKey();
    entries.push({ key, blob, record: recordFor(blob, `RUN step ${i}`) });
    await store.put(key, entryOf(entries[i].record, blob.path));
  }
  const base = Date.parse('2024-05-01T00:00:00Z');
  const order = [2, 0, 3, 1]; // least recently used first
  for (const [rank, index] of order.entries()) await store.markUsed(entries[index].key, new Date(base + rank * 1000));

  let total = (await store.usage()).bytes;
  for (const [step, index] of order.slice(0, 3).entries()) {
    const result = await store.enforceLimit(total - 1);
    assert.equal(result.evictedRecords, 1, `eviction ${step}`);
    assert.equal(result.totalBytes, (await store.usage()).bytes);
    assert.ok(result.totalBytes <= total - 1);
    total = result.totalBytes;
    assert.equal(existsSync(store.blobPath(entries[index].blob.digest)), false);
    for (const later of order.slice(step + 1)) assert.equal(existsSync(store.blobPath(entries[later].blob.digest)), true);
    assert.equal(await store.get(entries[index].key), undefined);
  }
  // A get is a use: the survivor is now the newest, and it is intact.
  await assertHit(store, entries[1].key, entries[1].record);
  assert.equal((await store.enforceLimit(0)).totalBytes, entries[1].blob.size, 'pinned by this instance');
  await store.release();
  assert.deepEqual(await store.enforceLimit(0), { evictedRecords: 0, freedBytes: entries[1].blob.size, totalBytes: 0 });
});

test('enforceLimit keeps the store under the limit and never removes a kept record\'s blob', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blobs = await Promise.all(Array.from({ length: 6 }, () => writeBlob(dir, randomBytes(500 + Math.floor(Math.random() * 3000)))));
  const base = Date.parse('2024-05-01T00:00:00Z');
  const put: { key: Digest; record: CacheRecord }[] = [];
  for (let round = 0; round < 8; round++) {
    for (let i = 0; i < 5; i++) {
      const blob = Math.random() < 0.2 ? undefined : blobs[Math.floor(Math.random() * blobs.length)];
      const key = randomKey();
      const record = recordFor(blob, `RUN ${round}-${i}`);
      await store.put(key, entryOf(record, blob?.path));
      await store.markUsed(key, new Date(base + Math.floor(Math.random() * 1e6)));
      put.push({ key, record });
    }
    const before = await store.usage();
    const limit = Math.floor(before.bytes * (0.3 + Math.random() * 0.6));
    const result = await store.enforceLimit(limit);
    const afterUsage = await store.usage();
    assert.ok(result.totalBytes <= limit, `round ${round}: ${result.totalBytes} > ${limit}`);
    assert.equal(result.totalBytes, afterUsage.bytes);
    assert.equal(result.freedBytes, before.bytes - afterUsage.bytes);
    assert.equal(result.evictedRecords, before.records - afterUsage.records);
    // Every record left must be a hit with an intact blob (a broken one would be dropped by get).
    let hits = 0;
    for (const { key, record } of put) {
      const got = (await store.get(key))?.record;
      if (got === undefined) continue;
      assert.deepEqual(got, record);
      if (record.layer !== undefined) assert.equal(await fileDigest(store.blobPath(record.layer.descriptor.digest)), record.layer.descriptor.digest);
      hits += 1;
    }
    assert.equal(hits, afterUsage.records);
    await store.release();
  }
});

test('a blob handed out by get stays while its build lives, and is freed once it ends', async () => {
  const dir = await tempDir();
  const cache = join(dir, 'cache');
  const reader = await LocalCacheStore.open(cache);
  const evictor = await LocalCacheStore.open(cache);
  const blob = await writeBlob(dir);
  const key = randomKey();
  await reader.put(key, entryOf(recordFor(blob), blob.path));
  assert.ok(await reader.get(key));
  const result = await evictor.enforceLimit(0);
  assert.equal(result.evictedRecords, 1);
  assert.equal(result.totalBytes, blob.size);
  assert.equal(await fileDigest(reader.blobPath(blob.digest)), blob.digest);
  await reader.release();
  assert.equal((await evictor.enforceLimit(0)).totalBytes, 0);
  assert.equal(existsSync(reader.blobPath(blob.digest)), false);

  // A build that died without releasing does not keep its blobs.
  await reader.put(key, entryOf(recordFor(blob), blob.path));
  const child = await runNode(`
    const { LocalCacheStore } = await import(${JSON.stringify(moduleUrl)});
    const store = await LocalCacheStore.open(${JSON.stringify(cache)});
    if (!(await store.get(${JSON.stringify(key)}))) throw new Error('expected a hit');
    process.exit(0);
  `);
  assert.equal(child.code, 0, child.stderr);
  assert.equal((await readdir(join(cache, 'pins'))).length, 1);
  const { bytes } = await evictor.usage();
  assert.deepEqual(await evictor.enforceLimit(0), { evictedRecords: 1, freedBytes: bytes, totalBytes: 0 });
  assert.deepEqual(await readdir(join(cache, 'pins')), []);
});

const moduleUrl = new URL('../../../builder/cache/local-store.js', import.meta.url).href;

function runNode(script: string, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A build process: each round, puts its entries and gets random ones, evicts (with a limit, every
 * other round), and only then reads the blobs of all its hits, which must still be complete, as
 * a build reads cached layers long after looking them up.
 */
const WORKER = `
  const { createHash } = await import('node:crypto');
  const { readFile } = await import('node:fs/promises');
  const [moduleUrl, dir, planJson] = process.argv.slice(1);
  const { createReadStream } = await import('node:fs');
  const { LocalCacheStore } = await import(moduleUrl);
  const { blobLayer } = await import(moduleUrl.replace('builder/cache/local-store.js', 'layers/lazy-image.js'));
  const entryOf = (record, path) =>
    record.layer ? { record, layer: blobLayer({ ...record.layer, open: async () => createReadStream(path), localPath: async () => path }) } : { record };
  const plan = JSON.parse(planJson);
  const store = await LocalCacheStore.open(dir);
  let hits = 0;
  for (let round = 0; round < plan.rounds; round++) {
    const got = [];
    for (const entry of plan.entries) {
      await store.put(entry.key, entryOf(entry.record, entry.blob));
      const probe = plan.entries[Math.floor(Math.random() * plan.entries.length)];
      const record = (await store.get(probe.key))?.record;
      if (record === undefined) continue;
      if (JSON.stringify(record) !== JSON.stringify(probe.record)) throw new Error('record differs for ' + probe.key);
      got.push(record);
    }
    if (plan.limit !== undefined && round % 2 === 1) await store.enforceLimit(plan.limit);
    for (const record of got) {
      hits++;
      if (!record.layer) continue;
      const bytes = await readFile(store.blobPath(record.layer.descriptor.digest));
      const digest = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
      if (digest !== record.layer.descriptor.digest) throw new Error('blob ' + record.layer.descriptor.digest + ' is damaged');
    }
    await store.release();
  }
  console.log(JSON.stringify({ hits }));
`;

/**
 * Checks, until the file \`stop\` appears, that whenever the store lock is free every record's blob
 * is in place with its size: puts and evictions must never leave a record without its blob.
 */
const OBSERVER = `
  const { readdir, readFile, stat, access } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const [lockUrl, dir, stop] = process.argv.slice(1);
  const { withLockFile } = await import(lockUrl);
  let checks = 0;
  const running = async () => access(stop).then(() => false, () => true);
  while (await running()) {
    await withLockFile(join(dir, 'store.lock'), async () => {
      for (const name of await readdir(join(dir, 'records')).catch(() => [])) {
        const record = JSON.parse(await readFile(join(dir, 'records', name), 'utf8'));
        if (!record.layer) continue;
        const blob = join(dir, 'blobs', 'sha256', record.layer.descriptor.digest.slice(7));
        const size = await stat(blob).then((info) => info.size, () => -1);
        if (size !== record.layer.descriptor.size) throw new Error('record ' + name + ' without its blob');
      }
    });
    checks++;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  console.log(JSON.stringify({ checks }));
`;

interface PlanEntry {
  key: Digest;
  record: CacheRecord;
  blob?: string;
}

async function runWorkers(cache: string, plans: { rounds: number; entries: PlanEntry[]; limit?: number }[]): Promise<void> {
  await LocalCacheStore.open(cache);
  const stop = join(cache, '..', 'stop');
  const lockUrl = new URL('../../../layers/layout-lock.js', import.meta.url).href;
  const observer = runNode(OBSERVER, [lockUrl, cache, stop]);
  const results = await Promise.all(plans.map((plan) => runNode(WORKER, [moduleUrl, cache, JSON.stringify(plan)])));
  await writeFile(stop, '');
  const observed = await observer;
  assert.equal(observed.code, 0, observed.stderr);
  assert.ok(JSON.parse(observed.stdout).checks > 0);
  for (const result of results) {
    assert.equal(result.code, 0, result.stderr);
    assert.ok(JSON.parse(result.stdout).hits > 0);
  }
}

/** Entries for two processes: `shared` keys both put (from their own copies of the blobs), and some of each's own. */
async function twoProcessEntries(dir: string, shared: number, own: number): Promise<[PlanEntry[], PlanEntry[]]> {
  const sharedEntries: [PlanEntry, PlanEntry][] = [];
  for (let i = 0; i < shared; i++) {
    const content = randomBytes(2000 + i * 100);
    const [a, b] = [await writeBlob(dir, content), await writeBlob(dir, content)];
    const key = randomKey();
    const record = i % 4 === 3 ? recordFor(undefined, `ENV shared${i}=1`) : recordFor(a, `RUN shared ${i}`);
    sharedEntries.push([
      { key, record, blob: record.layer ? a.path : undefined },
      { key, record, blob: record.layer ? b.path : undefined },
    ]);
  }
  const ownEntries = async (): Promise<PlanEntry[]> => {
    const entries: PlanEntry[] = [];
    for (let i = 0; i < own; i++) {
      const blob = await writeBlob(dir, randomBytes(1500));
      entries.push({ key: randomKey(), record: recordFor(blob, `RUN own ${i}`), blob: blob.path });
    }
    return entries;
  };
  return [
    [...sharedEntries.map(([a]) => a), ...(await ownEntries())],
    [...sharedEntries.map(([, b]) => b).reverse(), ...(await ownEntries())],
  ];
}

test('two processes putting the same and different keys end with intact records and blobs', async () => {
  const dir = await tempDir();
  const cache = join(dir, 'cache');
  const [first, second] = await twoProcessEntries(dir, 8, 4);
  await runWorkers(cache, [
    { rounds: 4, entries: first },
    { rounds: 4, entries: second },
  ]);
  const store = await LocalCacheStore.open(cache);
  const all = [...first, ...second.slice(8)];
  for (const entry of all) await assertHit(store, entry.key, entry.record);
  const digests = new Set(all.flatMap((entry) => (entry.record.layer ? [entry.record.layer.descriptor.digest] : [])));
  assert.deepEqual({ ...(await store.usage()), bytes: 0 }, { records: all.length, blobs: digests.size, bytes: 0 });
  assert.deepEqual((await readdir(cache)).filter((name) => name.startsWith('.tmp-') || name.endsWith('.lock')), []);
  await store.release();
});

test('two processes putting, reading and evicting concurrently never lose a blob in use or a kept record\'s blob', async () => {
  const dir = await tempDir();
  const cache = join(dir, 'cache');
  const [first, second] = await twoProcessEntries(dir, 6, 4);
  const limit = 9000; // room for about four blobs
  await runWorkers(cache, [
    { rounds: 10, entries: first, limit },
    { rounds: 10, entries: second, limit },
  ]);
  const store = await LocalCacheStore.open(cache);
  const { records } = await store.usage();
  const byKey = new Map([...first, ...second].map((entry) => [entry.key, entry.record]));
  let hits = 0;
  for (const [key, record] of byKey) {
    if ((await store.get(key)) === undefined) continue;
    await assertHit(store, key, record);
    hits += 1;
  }
  // Every record left is a hit: none lost its blob (get would have dropped it).
  assert.equal(hits, records);
  await store.release();
  assert.ok((await store.enforceLimit(limit)).totalBytes <= limit);
  assert.deepEqual((await readdir(cache)).filter((name) => name.startsWith('.tmp-') || name.endsWith('.lock')), []);
});

test('last inputs are remembered per step, and only for the newest steps', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'), { maxInputEntries: 3 });
  assert.equal(await store.lastInputs('Dockerfile:build:0'), undefined);
  await store.recordInputs('Dockerfile:build:0', { 'arg:VERSION': '1', 'file:/src/a.c': 'sha256:1' });
  await store.recordInputs('Dockerfile:build:0', { 'arg:VERSION': '2' });
  assert.deepEqual(await store.lastInputs('Dockerfile:build:0'), { 'arg:VERSION': '2' });
  assert.equal(await store.lastInputs('Dockerfile:build:1'), undefined);
  for (let i = 1; i <= 4; i++) {
    await sleep(5);
    await store.recordInputs(`Dockerfile:build:${i}`, { step: String(i) });
  }
  await store.enforceLimit(Number.MAX_SAFE_INTEGER);
  assert.equal(await store.lastInputs('Dockerfile:build:0'), undefined);
  assert.equal(await store.lastInputs('Dockerfile:build:1'), undefined);
  for (let i = 2; i <= 4; i++) assert.deepEqual(await store.lastInputs(`Dockerfile:build:${i}`), { step: String(i) });
  // They count towards the size limit like records.
  assert.equal((await store.enforceLimit(0)).totalBytes, 0);
  assert.equal(await store.lastInputs('Dockerfile:build:4'), undefined);
});

test('prune empties the store and reports what it removed', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  const keys = [randomKey(), randomKey(), randomKey()];
  await store.put(keys[0], entryOf(recordFor(blob), blob.path));
  await store.put(keys[1], entryOf(recordFor(blob, 'RUN again'), blob.path));
  await store.put(keys[2], entryOf(recordFor(undefined)));
  await store.recordInputs('step', { a: 'b' });
  const before = await store.usage();
  assert.deepEqual({ records: before.records, blobs: before.blobs }, { records: 3, blobs: 1 });
  assert.deepEqual(await store.prune(), { records: 3, bytes: before.bytes });
  assert.deepEqual(await store.usage(), { records: 0, blobs: 0, bytes: 0 });
  for (const key of keys) assert.equal(await store.get(key), undefined);
  assert.equal(await store.lastInputs('step'), undefined);
  assert.deepEqual(await readdir(join(dir, 'cache', 'blobs', 'sha256')), []);
  // Still usable afterwards.
  const again = recordFor(blob);
  await store.put(keys[0], entryOf(again, blob.path));
  await assertHit(store, keys[0], again);
  await store.release();
});

test('the default location is build-cache in the cache directory, and a foreign directory is refused', async () => {
  assert.equal(defaultBuildCacheDir({ TSBUILD_CACHE_DIR: '/x/c' }), '/x/c/build-cache');
  assert.equal(defaultBuildCacheDir({ XDG_CACHE_HOME: '/x/xdg' }), '/x/xdg/tsbuild/build-cache');
  const dir = await tempDir();
  await writeFile(join(dir, 'notes.txt'), 'mine');
  await assert.rejects(LocalCacheStore.open(dir), { code: 'CACHE_DIR' });
  assert.deepEqual(await readdir(dir), ['notes.txt']);
});

test('what a crash can leave of an unsynced record (empty, cut short, zeros) is a miss, and a put repairs it', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  const key = randomKey();
  const record = recordFor(blob);
  await store.put(key, entryOf(record, blob.path));
  const path = join(dir, 'cache', 'records', `${key.slice(7)}.json`);
  const written = await readFile(path);
  for (const left of [Buffer.alloc(0), written.subarray(0, written.length - 1), written.subarray(0, 20), Buffer.alloc(written.length)]) {
    await writeFile(path, left);
    assert.equal(await store.get(key), undefined, `record left as ${JSON.stringify(left.toString())}`);
  }
  await rm(path);
  await store.put(key, entryOf(record, blob.path));
  await assertHit(store, key, record);
  await store.release();
});

test('a blob the build hashed as it wrote it is linked with a size check only; a wrong size is still refused', async () => {
  const dir = await tempDir();
  const store = await LocalCacheStore.open(join(dir, 'cache'));
  const blob = await writeBlob(dir);
  const key = randomKey();
  const record = recordFor(blob);
  await store.put(key, entryOf(record, blob.path), { layerHashed: true });
  await assertHit(store, key, record);
  assert.equal((await stat(store.blobPath(blob.digest))).ino, (await stat(blob.path)).ino);
  const short = await writeBlob(dir);
  await writeFile(short.path, randomBytes(999));
  await assert.rejects(store.put(randomKey(), entryOf(recordFor(short), short.path), { layerHashed: true }), { code: 'DIGEST_MISMATCH' });
  assert.equal((await store.usage()).records, 1);
  await store.release();
});
