import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import type { Image } from '../../layers/image.js';
import { readLayoutImage } from '../../layers/layout-image.js';
import { MediaType, type Digest } from '../../layers/types.js';
import { BlobCache } from '../../registry-client/blob-cache.js';
import { RegistryError } from '../../registry-client/errors.js';
import type { TransferEvent } from '../../registry-client/progress.js';
import { pullImage, type PullOptions } from '../../registry-client/pull.js';
import { parseReference } from '../../registry-client/reference.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { freePort, startRegistry, type RegistryAuth, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';
import { buildImage, registryBlobFile, skopeoCopyIn } from './image-fixtures.js';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const FAST = { baseDelayMs: 20, maxDelayMs: 200, attempts: 3, budgetMs: 20_000 };
const GGCR = join(repoRoot(), 'test/fixtures/ggcr/layout');

function credentialsFor(registry: TestRegistry): PullOptions['transportOptions'] {
  if (registry.auth === 'plain') return {};
  const [username, password] = Object.entries(registry.users)[0]!;
  return { credentials: { username: username!, password: password! } };
}

/** Reads every layer of a pulled image back out of the cache. */
async function readLayers(image: Image): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const layer of await image.layers()) out.push(await buffer(await layer.compressed()));
  return out;
}

function tempFilesIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.startsWith('.tmp-'));
}

for (const auth of ['plain', 'htpasswd', 'token'] as RegistryAuth[]) {
  describe(`pullImage from a registry with ${auth} auth`, () => {
    let registry: TestRegistry;
    let work: string;
    before(async () => {
      registry = await startRegistry({ auth });
      work = mkdtempSync(join(tmpdir(), 'tsbuild-pull-'));
      // Layouts another tool wrote, pushed by skopeo: an OCI manifest, and Docker schema 2 media types.
      await skopeoCopyIn(registry, join(GGCR, 'test_index_one_image'), 'ggcr/one:1');
      await skopeoCopyIn(registry, `${join(GGCR, 'test_index')}:1`, 'ggcr/docker:1');
    });
    after(async () => {
      await registry?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it('pulls an image skopeo pushed from a foreign OCI layout, readable with readLayoutImage', async () => {
      const cacheDir = join(work, 'cache-oci');
      const events: TransferEvent[] = [];
      const pulled = await pullImage(parseReference(`${registry.host}/ggcr/one:1`), {
        platform: AMD64,
        cache: cacheDir,
        transportOptions: credentialsFor(registry),
        onProgress: (e) => events.push(e),
      });
      const source = JSON.parse(readFileSync(join(GGCR, 'test_index_one_image/index.json'), 'utf8')) as { manifests: { digest: Digest }[] };
      assert.equal(pulled.root.digest, source.manifests[0]!.digest);
      assert.equal(await pulled.image.digest(), pulled.root.digest);
      assert.equal(pulled.refName, `${registry.host}/ggcr/one:1`);
      const image = await readLayoutImage(pulled.cache.layout, { tag: pulled.refName }, AMD64);
      assert.equal(await image.digest(), pulled.root.digest);
      assert.deepEqual((await image.config()).rootfs.diff_ids, (await pulled.image.config()).rootfs.diff_ids);
      const [layer] = await readLayers(image);
      const { config, layers } = await pulled.image.manifest();
      const sourceLayer = readFileSync(join(GGCR, 'test_index_one_image/blobs/sha256', layers[0]!.digest.slice(7)));
      assert.deepEqual(layer, sourceLayer);
      assert.deepEqual(events.filter((e) => e.phase === 'done').map((e) => e.digest).sort(), [config.digest, layers[0]!.digest].sort());
      assert.deepEqual(tempFilesIn(cacheDir), []);
    });

    it('keeps Docker schema 2 media types as served', async () => {
      const pulled = await pullImage(parseReference(`${registry.host}/ggcr/docker:1`), { platform: AMD64, cache: join(work, 'cache-docker'), transportOptions: credentialsFor(registry) });
      assert.equal(pulled.root.mediaType, MediaType.DockerManifest);
      assert.equal(pulled.root.digest, 'sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650');
      assert.equal((await pulled.image.manifest()).config.mediaType, MediaType.DockerConfig);
      assert.equal((await pulled.image.manifest()).layers[0]!.mediaType, MediaType.DockerLayerGzip);
      const image = await readLayoutImage(pulled.cache.layout, { tag: pulled.refName }, AMD64);
      assert.equal((await readLayers(image))[0]!.length, 167);
    });

    it('selects the platform from a multi-platform index, and lists the platforms when none fits', async () => {
      const built = await buildImage(join(work, 'multi'), {
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
          { os: 'linux', architecture: 'arm', variant: 'v7' },
        ],
        seed: `multi-pull-${auth}`,
      });
      await skopeoCopyIn(registry, `${built.layout.dir}:v1`, 'team/multi:1');
      const cache = await BlobCache.open(join(work, 'cache-multi'));
      // arm64 without a variant means arm64/v8.
      const arm64 = { os: 'linux', architecture: 'arm64' };
      const pulled = await pullImage(parseReference(`${registry.host}/team/multi:1`), { platform: arm64, cache, transportOptions: credentialsFor(registry) });
      assert.equal(pulled.root.digest, built.root.digest);
      assert.equal(await pulled.image.digest(), built.manifests[1]!.digest);
      assert.equal((await pulled.image.config()).architecture, 'arm64');
      const image = await readLayoutImage(pulled.cache.layout, { tag: pulled.refName }, arm64);
      assert.equal(await image.digest(), built.manifests[1]!.digest);
      // Only the selected platform's blobs were downloaded.
      const other = JSON.parse((await built.layout.readBlob(built.manifests[0]!.digest)).toString('utf8')) as { layers: { digest: Digest }[] };
      assert.equal(await cache.has(other.layers[1]!.digest), false);
      await assert.rejects(
        pullImage(parseReference(`${registry.host}/team/multi:1`), { platform: { os: 'linux', architecture: 's390x' }, cache, transportOptions: credentialsFor(registry) }),
        (error: unknown) => {
          assert.ok(error instanceof TsbuildError);
          assert.equal(error.code, 'PLATFORM');
          assert.equal(error.message, `no matching platform: ${registry.host}/team/multi:1 has no image for linux/s390x (available: linux/amd64, linux/arm64/v8, linux/arm/v7)`);
          return true;
        },
      );
    });
  });
}

describe('pullImage through a fault proxy (plain registry)', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  let built: Awaited<ReturnType<typeof buildImage>>;
  before(async () => {
    registry = await startRegistry({ auth: 'plain' });
    proxy = await startFaultProxy(registry.host);
    work = mkdtempSync(join(tmpdir(), 'tsbuild-pull-faults-'));
    built = await buildImage(join(work, 'image'), { platforms: [AMD64, { os: 'linux', architecture: 'arm64' }], seed: 'pull-faults', layerSize: 400_000 });
    await skopeoCopyIn(registry, `${built.layout.dir}:v1`, 'base/app:1');
    await skopeoCopyIn(registry, `${built.layout.dir}:v1`, 'corrupt/app:1');
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const since = (start: number): string[] => proxy.seen.slice(start).map((r) => `${r.method} ${r.path.replace(/sha256:[0-9a-f]{64}/, 'DIGEST')}${r.fault !== undefined ? ` ${r.fault}` : ''}`);

  it('downloads in parallel once; a second pull does no blob I/O, a pull by digest no I/O at all', async () => {
    const cache = join(work, 'cache-repeat');
    const ref = parseReference(`${proxy.host}/base/app:1`);
    const start = proxy.seen.length;
    const first = await pullImage(ref, { platform: AMD64, cache, concurrency: 2 });
    const blobGets = since(start).filter((line) => line.startsWith('GET /v2/base/app/blobs/'));
    assert.equal(blobGets.length, 3, 'config and two layers');
    const second = proxy.seen.length;
    const again = await pullImage(ref, { platform: AMD64, cache });
    assert.deepEqual(since(second), ['HEAD /v2/base/app/manifests/1'], 'only the tag is resolved again');
    assert.deepEqual(await again.image.descriptor(), await first.image.descriptor());
    const third = proxy.seen.length;
    const events: TransferEvent[] = [];
    await pullImage(parseReference(`${proxy.host}/base/app@${first.root.digest}`), { platform: AMD64, cache, onProgress: (e) => events.push(e) });
    assert.deepEqual(since(third), []);
    assert.deepEqual(events.map((e) => e.phase), ['cached', 'cached', 'cached']);
  });

  it('resumes a layer whose connection drops mid-body with a Range request', async () => {
    const cache = join(work, 'cache-truncated');
    const layer = built.manifests[0]!;
    const manifest = JSON.parse((await built.layout.readBlob(layer.digest)).toString('utf8')) as { layers: { digest: Digest; size: number }[] };
    const big = manifest.layers[1]!;
    proxy.inject([{ kind: 'truncate', afterBytes: 100_000 }, { kind: 'truncate', afterBytes: 50_000 }], (method, path) => method === 'GET' && path.endsWith(big.digest));
    const events: TransferEvent[] = [];
    const start = proxy.seen.length;
    const pulled = await pullImage(parseReference(`${proxy.host}/base/app:1`), { platform: AMD64, cache, onProgress: (e) => e.digest === big.digest && events.push(e) });
    assert.equal(proxy.pending(), 0);
    assert.deepEqual(since(start).filter((line) => line.startsWith('GET /v2/base/app/blobs/DIGEST') && line.endsWith('truncate')).length, 2);
    // A cut that lands before the response headers left is retried by the transport instead: at
    // least one cut comes mid-body, and each resume goes on from further along.
    const resumed = events.filter((e) => e.phase === 'resume').map((e) => e.bytes);
    assert.ok(resumed.length >= 1 && resumed.length <= 2, `resumed at ${resumed.join(', ')}`);
    assert.ok(resumed[0]! > 0 && resumed[0]! <= 100_000 && (resumed.length === 1 || resumed[1]! > resumed[0]!), `resumed at ${resumed.join(', ')}`);
    const image = await readLayoutImage(pulled.cache.layout, { tag: pulled.refName }, AMD64);
    assert.deepEqual((await readLayers(image))[1], await built.layout.readBlob(big.digest));
  });

  it('fails verification of a corrupted blob and caches nothing of it', async () => {
    const manifest = JSON.parse((await built.layout.readBlob(built.manifests[0]!.digest)).toString('utf8')) as { layers: { digest: Digest }[] };
    const victim = manifest.layers[1]!.digest;
    const file = registryBlobFile(registry, victim);
    const bytes = readFileSync(file);
    bytes[1000] = bytes[1000]! ^ 0xff; // same size, other content
    writeFileSync(file, bytes);
    try {
      const cacheDir = join(work, 'cache-corrupt');
      await assert.rejects(pullImage(parseReference(`${proxy.host}/corrupt/app:1`), { platform: AMD64, cache: cacheDir }), (error: unknown) => {
        assert.ok(error instanceof TsbuildError);
        assert.equal(error.code, 'DIGEST_MISMATCH');
        assert.match(error.message, new RegExp(`^blob 127\\.0\\.0\\.1:\\d+/corrupt/app@${victim} failed verification: content has digest sha256:[0-9a-f]{64}, expected ${victim}; nothing was cached$`));
        return true;
      });
      const cache = await BlobCache.open(cacheDir);
      assert.equal(await cache.has(victim), false);
      assert.equal(existsSync(join(cacheDir, 'blobs/sha256', victim.slice(7))), false);
      assert.deepEqual(tempFilesIn(cacheDir), []);
      assert.deepEqual((await cache.layout.readIndex()).manifests, [], 'the image is not listed');
    } finally {
      bytes[1000] = bytes[1000]! ^ 0xff;
      writeFileSync(file, bytes);
    }
  });

  it('rejects a manifest whose content does not match the digest asked for', async () => {
    const cacheDir = join(work, 'cache-wrong-digest');
    const other = built.manifests[1]!.digest;
    // The manifest of arm64 asked for under the digest of amd64's manifest file swapped in the registry.
    const asked = built.manifests[0]!.digest;
    const file = registryBlobFile(registry, asked);
    const original = readFileSync(file);
    cpSync(registryBlobFile(registry, other), file);
    try {
      await assert.rejects(pullImage(parseReference(`${proxy.host}/corrupt/app:1`), { platform: AMD64, cache: cacheDir }), (error: unknown) => {
        assert.ok(error instanceof TsbuildError);
        assert.match(error.code, /^(DIGEST_MISMATCH|SIZE_MISMATCH)$/);
        assert.match(error.message, /^manifest 127\.0\.0\.1:\d+\/corrupt\/app@sha256:[0-9a-f]{64} failed verification: .*nothing was cached$/);
        return true;
      });
      assert.equal(await (await BlobCache.open(cacheDir)).has(asked), false);
    } finally {
      writeFileSync(file, original);
    }
  });
});

describe('pullImage errors', () => {
  let plain: TestRegistry;
  let basic: TestRegistry;
  let token: TestRegistry;
  let work: string;
  before(async () => {
    [plain, basic, token] = await Promise.all([startRegistry({ auth: 'plain' }), startRegistry({ auth: 'htpasswd' }), startRegistry({ auth: 'token' })]);
    work = mkdtempSync(join(tmpdir(), 'tsbuild-pull-errors-'));
    await skopeoCopyIn(plain, join(GGCR, 'test_index_one_image'), 'known/app:1');
  });
  after(async () => {
    await Promise.all([plain?.stop(), basic?.stop(), token?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  async function failure(ref: string, options: Partial<PullOptions> = {}): Promise<RegistryError> {
    let caught: unknown;
    await pullImage(parseReference(ref), { platform: AMD64, cache: join(work, 'cache'), transportOptions: { retry: FAST }, ...options }).catch((error: unknown) => {
      caught = error;
    });
    assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
    assert.ok(!caught.message.includes('\n'));
    assert.ok(!caught.message.includes('wrong-password'));
    return caught;
  }

  it('gives each failure its own clear error', async () => {
    const wrong = { retry: FAST, credentials: { username: 'alice', password: 'wrong-password' } };
    const basicError = await failure(`${basic.host}/known/app:1`, { transportOptions: wrong });
    assert.equal(basicError.code, 'UNAUTHORIZED');
    assert.match(basicError.message, /^unauthorized: .*HTTP 401, the credentials of user alice were refused\)$/);
    const tokenError = await failure(`${token.host}/known/app:1`, { transportOptions: wrong });
    assert.equal(tokenError.code, 'UNAUTHORIZED');
    assert.match(tokenError.message, /^unauthorized: incorrect username or password .*token request for repository:known\/app:pull/);

    const repoError = await failure(`${plain.host}/no/such-repo:1`);
    assert.equal(repoError.code, 'NAME_UNKNOWN');
    assert.match(repoError.message, /^name unknown: repository no\/such-repo is not known to registry 127\.0\.0\.1:\d+ \(looking for 127\.0\.0\.1:\d+\/no\/such-repo:1\)$/);
    const tagError = await failure(`${plain.host}/known/app:nope`);
    assert.equal(tagError.code, 'MANIFEST_UNKNOWN');
    assert.match(tagError.message, /^manifest unknown: .*known\/app:nope \(GET /);
    const port = await freePort();
    const hostError = await failure(`127.0.0.1:${port}/known/app:1`);
    assert.equal(hostError.code, 'UNREACHABLE');
    assert.match(hostError.message, new RegExp(`^unreachable: cannot connect to registry 127\\.0\\.0\\.1:${port}: connection refused`));
    assert.equal(new Set([basicError.code, repoError.code, tagError.code, hostError.code]).size, 4);
  });
});
