import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { CacheEntry } from '../../../builder/cache/cache-store.js';
import { buildForTest, type TestBuildOptions } from '../../support/build-for-test.js';
import { LocalCacheStore } from '../../../builder/cache/local-store.js';
import type { CacheRecord } from '../../../builder/cache/local-store-record.js';
import { parseCacheTtl } from '../../../builder/cache/cache-ttl.js';
import { CACHE_RECORD_LABEL, RegistryCache } from '../../../builder/cache/registry-cache.js';
import { chrootAvailable } from '../../../builder/isolation/chroot.js';
import type { BuildEvent } from '../../../builder/progress.js';
import { TsbuildError } from '../../../layers/errors.js';
import { blobLayer } from '../../../layers/lazy-image.js';
import { MediaType, type Digest } from '../../../layers/types.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { REGISTRY_BINARY, startRegistry, type TestRegistry } from '../../support/registry.js';
import { requires } from '../../support/requirement.js';
import { validateLayout } from '../../support/validate-layout.js';

const run = promisify(execFile);
const haveRegistry = existsSync(REGISTRY_BINARY);
const canBuild = process.getuid?.() === 0 && (await chrootAvailable());

const sha256 = (bytes: Buffer | string): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const randomKey = (): Digest => sha256(randomBytes(32));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function listTags(registry: TestRegistry, repository: string): Promise<string[]> {
  const { stdout } = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${registry.host}/${repository}`]);
  return (JSON.parse(stdout) as { Tags: string[] }).Tags;
}

describe('parseCacheTtl', () => {
  test('reads seconds, minutes, hours and days', () => {
    assert.equal(parseCacheTtl('3600'), 3600);
    assert.equal(parseCacheTtl('90s'), 90);
    assert.equal(parseCacheTtl('30m'), 1800);
    assert.equal(parseCacheTtl('168h'), 168 * 3600);
    assert.equal(parseCacheTtl('7d'), 7 * 86_400);
  });

  test('refuses anything else with a clear error', () => {
    for (const bad of ['', '0', '0h', '-5m', '1.5h', '1w', 'h', '10 days', '1h30m']) {
      assert.throws(() => parseCacheTtl(bad), (error: unknown) => error instanceof TsbuildError && error.code === 'BAD_FLAG' && error.message.includes(`"${bad}"`), bad);
    }
  });
});

describe('RegistryCache', { skip: requires(haveRegistry ? false : `${REGISTRY_BINARY} is missing`) }, () => {
  let registry: TestRegistry;
  let work: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-registry-cache-'));
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function freshStore(): Promise<LocalCacheStore> {
    return LocalCacheStore.open(await mkdtemp(path.join(work, 'store-')));
  }

  /** An entry for `record`, its layer (if `blob` is given) read from the file `blob`. */
  function entryOf(record: CacheRecord, blob?: string): CacheEntry {
    if (blob === undefined) return { record };
    const descriptor = record.layer?.descriptor ?? { mediaType: MediaType.LayerGzip, digest: randomKey(), size: 0 };
    return { record, layer: blobLayer({ descriptor, diffId: record.layer?.diffId ?? randomKey(), open: async () => createReadStream(blob), localPath: async () => blob }) };
  }

  /** What the step cache does on a local miss: the repository's entry for `key`, brought into `store`. */
  async function fetchInto(cache: RegistryCache, key: Digest, store: LocalCacheStore): Promise<boolean> {
    const entry = await cache.get(key);
    if (entry === undefined) return false;
    await store.put(key, entry);
    return true;
  }

  /** A record with a layer blob of random bytes, written to a file. */
  async function layerRecord(): Promise<{ record: CacheRecord; blob: string; bytes: Buffer }> {
    const bytes = randomBytes(5000);
    const blob = path.join(work, `blob-${randomBytes(4).toString('hex')}`);
    await writeFile(blob, bytes);
    const record: CacheRecord = {
      version: 1,
      layer: { descriptor: { mediaType: MediaType.LayerGzip, digest: sha256(bytes), size: bytes.length }, diffId: randomKey() },
      history: { created_by: 'RUN echo hi' },
      inputs: { version: '1', instruction: 'run', platform: 'linux/arm64/v8', 'step:command': '["echo hi"]', 'file:a b/ü.txt': sha256('x') },
      createdAt: new Date().toISOString(),
    };
    return { record, blob, bytes };
  }

  test('a published step comes back into another local store, blob and record intact', async () => {
    const cache = new RegistryCache(`${registry.host}/team/cache`);
    const key = randomKey();
    const { record, blob, bytes } = await layerRecord();
    try {
      await cache.put(key, entryOf(record, blob));
      assert.deepEqual(await listTags(registry, 'team/cache'), [key.slice('sha256:'.length)]);
      const { stdout } = await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${registry.host}/team/cache:${key.slice(7)}`]);
      const config = JSON.parse(stdout) as { architecture: string; os: string; variant?: string; config: { Labels: Record<string, string> }; rootfs: { diff_ids: string[] } };
      assert.deepEqual([config.os, config.architecture, config.variant], ['linux', 'arm64', 'v8']);
      assert.deepEqual(JSON.parse(config.config.Labels[CACHE_RECORD_LABEL]!), record);
      assert.deepEqual(config.rootfs.diff_ids, [record.layer!.diffId]);

      const store = await freshStore();
      assert.equal(await store.get(key), undefined);
      assert.equal(await fetchInto(cache, key, store), true);
      assert.deepEqual((await store.get(key))?.record, record);
      assert.deepEqual(await readFile(store.blobPath(record.layer!.descriptor.digest)), bytes);
      await store.release();
    } finally {
      await cache.release();
    }
  });

  test('a step without a layer round-trips as an image with no layers', async () => {
    const cache = new RegistryCache(`${registry.host}/team/empty`);
    const key = randomKey();
    const record: CacheRecord = { version: 1, history: { created_by: 'WORKDIR /srv', empty_layer: true }, inputs: { instruction: 'workdir' }, createdAt: new Date().toISOString() };
    try {
      await cache.put(key, { record });
      const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/team/empty:${key.slice(7)}`]);
      assert.deepEqual((JSON.parse(stdout) as { layers: unknown[] }).layers, []);
      const store = await freshStore();
      assert.equal(await fetchInto(cache, key, store), true);
      assert.deepEqual((await store.get(key))?.record, record);
      await store.release();
      await assert.rejects(cache.put(key, entryOf(record, path.join(work, 'nothing'))), /a layer must be given exactly when the record has a layer/);
    } finally {
      await cache.release();
    }
  });

  test('a missing tag, in a known or an unknown repository, is a miss, not an error', async () => {
    const known = new RegistryCache(`${registry.host}/team/cache`);
    const unknown = new RegistryCache(`${registry.host}/nobody/here`);
    const store = await freshStore();
    try {
      assert.equal(await fetchInto(known, randomKey(), store), false);
      assert.equal(await fetchInto(unknown, randomKey(), store), false);
      assert.equal((await store.usage()).records, 0);
    } finally {
      await known.release();
      await unknown.release();
    }
  });

  test('an entry older than the TTL is a miss; a younger one is a hit', async () => {
    const publisher = new RegistryCache(`${registry.host}/team/ttl`);
    const strict = new RegistryCache(`${registry.host}/team/ttl`, { ttlSeconds: 1 });
    const lenient = new RegistryCache(`${registry.host}/team/ttl`, { ttlSeconds: 3600 });
    const key = randomKey();
    const { record, blob } = await layerRecord();
    try {
      await publisher.put(key, entryOf(record, blob));
      await sleep(2000);
      const store = await freshStore();
      assert.equal(await fetchInto(strict, key, store), false);
      assert.equal(await store.get(key), undefined);
      assert.equal(await fetchInto(lenient, key, store), true);
      await store.release();
    } finally {
      await Promise.all([publisher.release(), strict.release(), lenient.release()]);
    }
  });

  test('a tag that is not a cache entry is an error, as is a registry that is down', async () => {
    const key = randomKey();
    const image = path.join(work, 'plain-image');
    await writeBusyboxImage(image);
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${image}:latest`, `docker://${registry.host}/team/foreign:${key.slice(7)}`]);
    const foreign = new RegistryCache(`${registry.host}/team/foreign`);
    const store = await freshStore();
    try {
      await assert.rejects(fetchInto(foreign, key, store), (error: unknown) => error instanceof TsbuildError && /is not a build cache entry: its config has no dev\.tsbuild\.cache\.record label/.test(error.message));
    } finally {
      await foreign.release();
    }

    const down = await startRegistry();
    await down.stop();
    const unreachable = new RegistryCache(`${down.host}/team/cache`);
    const { record, blob } = await layerRecord();
    try {
      await assert.rejects(fetchInto(unreachable, key, store), (error: unknown) => error instanceof TsbuildError && /connection refused/.test(error.message));
      await assert.rejects(unreachable.put(key, entryOf(record, blob)), (error: unknown) => error instanceof TsbuildError && /connection refused/.test(error.message));
    } finally {
      await unreachable.release();
      await store.release();
    }
  });

  test('a repository with a tag or digest is refused', () => {
    for (const bad of [`${registry.host}/team/cache:v1`, `${registry.host}/team/cache@${randomKey()}`, 'cache:latest']) {
      assert.throws(() => new RegistryCache(bad), /invalid --cache-repo/, bad);
    }
    assert.equal(new RegistryCache(`${registry.host}/team/cache`).repository, `${registry.host}/team/cache`);
  });
});

interface StepReport {
  readonly cached: boolean;
  readonly summary: string;
}

describe('builds sharing a cache repository', { skip: requires(!haveRegistry ? `${REGISTRY_BINARY} is missing` : canBuild ? false : 'needs root for RUN steps') }, () => {
  let registry: TestRegistry;
  let work: string;
  let base: string;
  let contextDir: string;

  before(async () => {
    registry = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-registry-cache-build-'));
    base = path.join(work, 'base');
    await writeBusyboxImage(base);
    contextDir = path.join(work, 'context');
    await mkdir(contextDir);
    // The RUN writes a random UUID: a rebuild gives the same digest only when the RUN was reused.
    await writeFile(path.join(contextDir, 'Dockerfile'), 'FROM busybox\nCOPY app.txt /app/\nRUN cat /proc/sys/kernel/random/uuid > /app/built-at\nWORKDIR /srv\nRUN echo done > /srv/done\n');
    await writeFile(path.join(contextDir, 'app.txt'), 'v1\n');
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** Builds with a fresh local cache directory (another "machine") and reports each step's cache outcome and the notes. */
  async function buildOnNewMachine(extra: Partial<TestBuildOptions>): Promise<{ steps: StepReport[]; notes: string[]; digest: string }> {
    const steps: StepReport[] = [];
    const notes: string[] = [];
    const progress = (event: BuildEvent): void => {
      if (event.kind === 'step-cache') steps.push({ cached: event.cached, summary: event.summary });
      if (event.kind === 'note') notes.push(event.message);
    };
    const dest = path.join(work, `out-${randomBytes(6).toString('hex')}`);
    const result = await buildForTest({
      context: contextDir,
      outputs: [{ type: 'oci', dest, tar: false }],
      buildContexts: [`busybox=oci-layout://${base}`],
      isolation: 'chroot',
      cacheDir: await mkdtemp(path.join(work, 'cache-')),
      sourceDateEpoch: 1_700_000_000,
      progress,
      ...extra,
    });
    await validateLayout(dest);
    return { steps, notes, digest: result.descriptor.digest };
  }

  test('a second machine reuses every step from the repository and builds the same image', async () => {
    const cacheRepo = `${registry.host}/team/shared`;
    const first = await buildOnNewMachine({ cacheRepo });
    assert.deepEqual(first.steps.map((s) => s.cached), [false, false, false, false]);
    assert.deepEqual(first.notes.filter((n) => n.startsWith('cache repo')), []);
    assert.equal((await listTags(registry, 'team/shared')).length, first.steps.length, 'one tag per step');

    const second = await buildOnNewMachine({ cacheRepo });
    assert.deepEqual(second.steps.map((s) => s.cached), [true, true, true, true]);
    assert.equal(second.digest, first.digest);

    const unshared = await buildOnNewMachine({});
    assert.deepEqual(unshared.steps.map((s) => s.cached), [false, false, false, false], 'without the repository a new machine runs everything');
    assert.notEqual(unshared.digest, first.digest, 'the RUN ran again');
  });

  test('entries older than --cache-ttl are not reused', async () => {
    const cacheRepo = `${registry.host}/team/aging`;
    const first = await buildOnNewMachine({ cacheRepo });
    await sleep(2000);
    const expired = await buildOnNewMachine({ cacheRepo, cacheTtlSeconds: 1 });
    assert.deepEqual(expired.steps.map((s) => s.cached), [false, false, false, false]);
    assert.notEqual(expired.digest, first.digest);
    const fresh = await buildOnNewMachine({ cacheRepo, cacheTtlSeconds: 3600 });
    assert.deepEqual(fresh.steps.map((s) => s.cached), [true, true, true, true]);
  });

  test('--no-cache looks nothing up but still publishes', async () => {
    const cacheRepo = `${registry.host}/team/no-cache`;
    await buildOnNewMachine({ cacheRepo });
    const forced = await buildOnNewMachine({ cacheRepo, noCache: true });
    assert.deepEqual(forced.steps.map((s) => s.summary), ['--no-cache', '--no-cache', '--no-cache', '--no-cache']);
    const reused = await buildOnNewMachine({ cacheRepo });
    assert.deepEqual(reused.steps.map((s) => s.cached), [true, true, true, true]);
    assert.equal(reused.digest, forced.digest, 'the entries published by the --no-cache build replaced the first ones');
  });

  test('a cache repository that is down gives a warning and a successful build', async () => {
    const down = await startRegistry();
    await down.stop();
    const cacheRepo = `${down.host}/team/gone`;
    const result = await buildOnNewMachine({ cacheRepo });
    assert.deepEqual(result.steps.map((s) => s.cached), [false, false, false, false]);
    const warnings = result.notes.filter((n) => n.startsWith(`cache repo ${cacheRepo}: `));
    assert.equal(warnings.length, 2, `one for lookups, one for publishing: ${warnings.join(' | ')}`);
    for (const warning of warnings) assert.match(warning, /connection refused/);
  });
});
