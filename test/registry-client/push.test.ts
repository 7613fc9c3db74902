import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Digest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { blobLayer } from '../../layers/lazy-image.js';
import { layoutItem } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type Digest } from '../../layers/types.js';
import { RegistryError } from '../../registry-client/errors.js';
import type { TransferEvent } from '../../registry-client/progress.js';
import { pushImage, type PushOptions } from '../../registry-client/push.js';
import { parseReference } from '../../registry-client/reference.js';
import { RegistryTransport, type RetryNotice } from '../../registry-client/transport.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type RegistryAuth, type TestRegistry } from '../support/registry.js';
import { buildImage, layoutBlobs, registryBlobFile, skopeoCopyOut, skopeoInspect, skopeoRawManifest } from './image-fixtures.js';

const FAST = { baseDelayMs: 20, maxDelayMs: 200, attempts: 4, budgetMs: 20_000 };

/**
 * A proxy that forwards everything, except that the first `cuts` PATCH requests have their body cut
 * after `afterBytes`: the registry receives part of the chunk, then both connections close.
 */
async function startBodyCuttingProxy(target: string, cuts: number, afterBytes: number): Promise<{ host: string; cut: number; seen: string[]; stop(): Promise<void> }> {
  const [host, port] = target.split(':') as [string, string];
  const state = { cut: 0, seen: [] as string[] };
  const server: Server = createServer((req, res) => {
    state.seen.push(`${req.method} ${req.url}`);
    const upstream = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.socket?.destroy());
    if (req.method !== 'PATCH' || state.cut >= cuts) {
      req.pipe(upstream);
      return;
    }
    state.cut++;
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      const room = afterBytes - forwarded;
      if (room > 0) upstream.write(chunk.subarray(0, room));
      forwarded += chunk.length;
      if (forwarded >= afterBytes) {
        req.pause();
        // Let the partial chunk reach the registry, then cut both sides.
        setTimeout(() => {
          upstream.destroy();
          req.socket.destroy();
        }, 100);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get cut() {
      return state.cut;
    },
    seen: state.seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function credentialsFor(registry: TestRegistry): PushOptions['transportOptions'] {
  if (registry.auth === 'plain') return {};
  const [username, password] = Object.entries(registry.users)[0]!;
  return { credentials: { username: username!, password: password! } };
}

/** Every blob digest reachable from `root` in a layout (manifests included). */
function expectedBlobs(blobs: Map<string, Buffer>, root: string): Set<string> {
  const out = new Set<string>([root]);
  const walk = (digest: string): void => {
    const doc = JSON.parse(blobs.get(digest)!.toString('utf8')) as { manifests?: { digest: string }[]; config?: { digest: string }; layers?: { digest: string }[] };
    for (const child of doc.manifests ?? []) {
      out.add(child.digest);
      walk(child.digest);
    }
    if (doc.config !== undefined) out.add(doc.config.digest);
    for (const layer of doc.layers ?? []) out.add(layer.digest);
  };
  walk(root);
  return out;
}

for (const auth of ['plain', 'htpasswd', 'token'] as RegistryAuth[]) {
  describe(`pushImage to a registry with ${auth} auth`, () => {
    let registry: TestRegistry;
    let work: string;
    before(async () => {
      registry = await startRegistry({ auth });
      work = mkdtempSync(join(tmpdir(), 'tsbuild-push-'));
    });
    after(async () => {
      await registry?.stop();
      rmSync(work, { recursive: true, force: true });
    });

    it('pushes an image that skopeo reads back byte for byte', async () => {
      const image = await buildImage(join(work, 'single'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: `single-${auth}` });
      const events: TransferEvent[] = [];
      const result = await pushImage([parseReference(`${registry.host}/team/app:1`)], image.item, {
        transportOptions: credentialsFor(registry),
        onProgress: (event) => events.push(event),
      });
      assert.equal(result.descriptor.digest, image.root.digest);
      assert.deepEqual(result.references, [`${registry.host}/team/app:1`]);
      const raw = await skopeoRawManifest(registry, registry.host, 'team/app:1');
      assert.equal(sha256Digest(raw), image.root.digest);
      const inspected = await skopeoInspect(registry, registry.host, 'team/app:1');
      assert.equal(inspected.Digest, image.root.digest);
      assert.equal(inspected.Architecture, 'amd64');
      const copied = join(work, 'single-copy');
      await skopeoCopyOut(registry, 'team/app:1', copied);
      const ours = layoutBlobs(image.layout.dir);
      const theirs = layoutBlobs(copied);
      for (const digest of expectedBlobs(ours, image.root.digest)) assert.deepEqual(theirs.get(digest), ours.get(digest), `blob ${digest} differs`);
      // Each of the three blobs was started and finished, with byte counts up to its size.
      const done = events.filter((e) => e.phase === 'done');
      assert.equal(done.length, 3);
      for (const event of done) assert.equal(event.bytes, event.total);
      assert.ok(events.some((e) => e.phase === 'progress' && e.bytes > 0));
      assert.ok(events.every((e) => e.direction === 'push' && e.repository === `${registry.host}/team/app`));
    });

    it('pushes a multi-platform index after its manifests, and skips blobs the registry has', async () => {
      const image = await buildImage(join(work, 'multi'), {
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ],
        seed: `multi-${auth}`,
      });
      const targets = [parseReference(`${registry.host}/team/multi:1`), parseReference(`${registry.host}/team/multi:latest`)];
      const result = await pushImage(targets, image.item, { transportOptions: credentialsFor(registry) });
      assert.equal(result.descriptor.digest, image.root.digest);
      for (const tag of ['1', 'latest']) assert.equal(sha256Digest(await skopeoRawManifest(registry, registry.host, `team/multi:${tag}`)), image.root.digest);
      const copied = join(work, 'multi-copy');
      await skopeoCopyOut(registry, 'team/multi:1', copied);
      const ours = layoutBlobs(image.layout.dir);
      const theirs = layoutBlobs(copied);
      const wanted = expectedBlobs(ours, image.root.digest);
      assert.equal(wanted.size, 1 + 2 + 2 + 1 + 2); // index, 2 manifests, 2 configs, 1 shared + 2 own layers
      for (const digest of wanted) assert.deepEqual(theirs.get(digest), ours.get(digest), `blob ${digest} differs`);
      // A second push sends no blob: every one is reported as existing.
      const again: TransferEvent[] = [];
      await pushImage(targets, image.item, { transportOptions: credentialsFor(registry), onProgress: (e) => again.push(e) });
      assert.equal(again.length, 5);
      assert.ok(again.every((e) => e.phase === 'exists'));
    });

    it("mounts a layer from its own origin on the target registry, never reading the layer's bytes", async () => {
      const image = await buildImage(join(work, 'origin'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: `origin-${auth}` });
      await pushImage([parseReference(`${registry.host}/pulled/base:1`)], image.item, { transportOptions: credentialsFor(registry) });
      const proxy = await startFaultProxy(registry.host);
      try {
        const origin = { registry: proxy.host, repository: 'pulled/base' };
        const layout = await OciLayout.open(image.layout.dir, { create: false });
        const opened: string[] = [];
        const withOrigin = layoutItem(layout, image.root, (descriptor, diffId) =>
          blobLayer({
            descriptor,
            diffId,
            open: async () => {
              opened.push(descriptor.digest);
              return layout.openBlob(descriptor.digest);
            },
            origin,
          }),
        );
        const events: TransferEvent[] = [];
        await pushImage([parseReference(`${proxy.host}/derived/app:1`)], withOrigin, { transportOptions: credentialsFor(registry), onProgress: (e) => events.push(e) });
        const layers = events.filter((e) => e.mediaType !== MediaType.ImageConfig);
        assert.ok(layers.length > 0);
        assert.deepEqual(layers.map((e) => [e.phase, e.from]), layers.map(() => ['mounted', 'pulled/base']));
        assert.deepEqual(opened, [], 'no layer was read');
        assert.equal(proxy.seen.filter((r) => r.method === 'POST' && r.path.includes('from=pulled%2Fbase')).length, layers.length);
        assert.equal(sha256Digest(await skopeoRawManifest(registry, registry.host, 'derived/app:1')), image.root.digest);
      } finally {
        await proxy.stop();
      }
    });
  });
}

describe('pushImage uploads and faults (plain registry behind a fault proxy)', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let work: string;
  before(async () => {
    registry = await startRegistry({ auth: 'plain' });
    proxy = await startFaultProxy(registry.host);
    work = mkdtempSync(join(tmpdir(), 'tsbuild-push-faults-'));
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const requests = (start: number, pattern: RegExp): string[] =>
    proxy.seen.slice(start).filter((r) => pattern.test(`${r.method} ${r.path}`)).map((r) => `${r.method} ${r.fault ?? 'ok'}`);

  async function manifestExists(repo: string, tag: string): Promise<boolean> {
    const transport = new RegistryTransport(registry.host);
    try {
      const head = await transport.request({ method: 'HEAD', path: `/v2/${repo}/manifests/${tag}`, expectStatus: [200, 404] });
      await head.body.dump();
      return head.status === 200;
    } finally {
      await transport.close();
    }
  }

  it('sends large blobs in chunked PATCH uploads with Content-Range', async () => {
    const image = await buildImage(join(work, 'chunked'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'chunked', layerSize: 300_000 });
    const start = proxy.seen.length;
    await pushImage([parseReference(`${proxy.host}/big/app:1`)], image.item, { chunkThreshold: 64 * 1024, chunkSize: 100 * 1024 });
    const layer = JSON.parse((await image.layout.readBlob(image.root.digest)).toString('utf8')).layers[1] as { digest: Digest; size: number };
    assert.ok(layer.size > 250_000, 'random bytes do not compress');
    assert.equal(requests(start, /PATCH/).length, Math.ceil(layer.size / (100 * 1024)));
    // The small blobs went up in one PUT each.
    assert.equal(requests(start, /^PUT .*\/blobs\/uploads\/.*digest=/).length, 3);
    assert.deepEqual(await readFile(registryBlobFile(registry, layer.digest)), await image.layout.readBlob(layer.digest));
  });

  it('completes through dropped connections, 500s and a 429 with Retry-After', async () => {
    const image = await buildImage(join(work, 'faulty'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'faulty', layerSize: 300_000 });
    const notices: RetryNotice[] = [];
    const events: TransferEvent[] = [];
    proxy.inject([{ kind: 'drop' }, { kind: 'status', status: 500 }], (method) => method === 'PATCH');
    proxy.inject([{ kind: 'status', status: 503 }, { kind: 'drop' }], (method, path) => method === 'PUT' && path.includes('/blobs/'));
    proxy.inject([{ kind: 'status', status: 429, retryAfter: '1' }], (method) => method === 'POST');
    proxy.inject([{ kind: 'status', status: 500 }], (method, path) => method === 'PUT' && path.includes('/manifests/'));
    const started = Date.now();
    await pushImage([parseReference(`${proxy.host}/faulty/app:1`)], image.item, {
      chunkThreshold: 64 * 1024,
      chunkSize: 128 * 1024,
      concurrency: 1,
      transportOptions: { retry: FAST, onRetry: (n) => notices.push(n) },
      onProgress: (e) => events.push(e),
    });
    assert.equal(proxy.pending(), 0, 'every fault was met');
    assert.ok(Date.now() - started >= 950, 'the Retry-After second was waited');
    assert.deepEqual(notices.map((n) => n.error.status ?? n.error.code).sort(), [429, 500, 500, 503, 'CONNECTION', 'CONNECTION'].sort());
    assert.equal(notices.find((n) => n.error.code === 'TOOMANYREQUESTS')!.delayMs, 1000);
    assert.equal(sha256Digest(await skopeoRawManifest(registry, registry.host, 'faulty/app:1')), image.root.digest);
    const copied = join(work, 'faulty-copy');
    await skopeoCopyOut(registry, 'faulty/app:1', copied);
    const ours = layoutBlobs(image.layout.dir);
    const theirs = layoutBlobs(copied);
    for (const digest of expectedBlobs(ours, image.root.digest)) assert.deepEqual(theirs.get(digest), ours.get(digest));
    assert.equal(events.filter((e) => e.phase === 'done').length, 3);
  });

  it('recovers when a chunk is cut off after the registry received part of it', async () => {
    const image = await buildImage(join(work, 'cut'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'cut', layerSize: 300_000 });
    const cutter = await startBodyCuttingProxy(registry.host, 2, 40_000);
    try {
      const events: TransferEvent[] = [];
      await pushImage([parseReference(`${cutter.host}/cut/app:1`)], image.item, {
        chunkThreshold: 64 * 1024,
        chunkSize: 128 * 1024,
        transportOptions: { retry: FAST },
        onProgress: (e) => events.push(e),
      });
      assert.equal(cutter.cut, 2);
      // The registry (distribution 2.8) refuses a resent chunk once part of it arrived, and then forgets
      // the upload: the status GET finds it gone and the blob starts over in a fresh upload.
      assert.ok(cutter.seen.some((line) => /^GET \/v2\/cut\/app\/blobs\/uploads\/[^?]+/.test(line)), 'the upload status was asked for');
      assert.ok(events.some((e) => e.phase === 'resume' && e.bytes === 0), 'the blob started over');
      assert.equal(sha256Digest(await skopeoRawManifest(registry, registry.host, 'cut/app:1')), image.root.digest);
      const copied = join(work, 'cut-copy');
      await skopeoCopyOut(registry, 'cut/app:1', copied);
      const ours = layoutBlobs(image.layout.dir);
      const theirs = layoutBlobs(copied);
      for (const digest of expectedBlobs(ours, image.root.digest)) assert.deepEqual(theirs.get(digest), ours.get(digest));
    } finally {
      await cutter.stop();
    }
  });

  it('resumes a chunked upload from the Range the registry reports once a chunk runs out of retries', async () => {
    const image = await buildImage(join(work, 'resume'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'resume', layerSize: 300_000 });
    const patches = (): number => proxy.seen.filter((r) => r.method === 'PATCH').length;
    const before = patches();
    // The second PATCH is dropped on both of its tries.
    proxy.inject([{ kind: 'drop' }, { kind: 'drop' }], (method) => method === 'PATCH' && patches() >= before + 1);
    const events: TransferEvent[] = [];
    const start = proxy.seen.length;
    await pushImage([parseReference(`${proxy.host}/resume/app:1`)], image.item, {
      chunkThreshold: 64 * 1024,
      chunkSize: 128 * 1024,
      transportOptions: { retry: { ...FAST, attempts: 2 } },
      onProgress: (e) => events.push(e),
    });
    assert.equal(proxy.pending(), 0);
    assert.deepEqual(events.filter((e) => e.phase === 'resume').map((e) => e.bytes), [128 * 1024]);
    assert.deepEqual(requests(start, /^(PATCH|GET \/v2\/resume\/app\/blobs\/uploads)/), ['PATCH ok', 'PATCH drop', 'PATCH drop', 'GET ok', 'PATCH ok', 'PATCH ok']);
    assert.equal(sha256Digest(await skopeoRawManifest(registry, registry.host, 'resume/app:1')), image.root.digest);
    const layer = JSON.parse((await image.layout.readBlob(image.root.digest)).toString('utf8')).layers[1] as { digest: Digest };
    assert.deepEqual(await readFile(registryBlobFile(registry, layer.digest)), await image.layout.readBlob(layer.digest));
  });

  it('gives up clearly after the retry budget and pushes no manifest', async () => {
    const image = await buildImage(join(work, 'doomed'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'doomed' });
    proxy.inject(Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 502 })), (method, path) => method === 'PUT' && path.includes('/blobs/'));
    const start = proxy.seen.length;
    await assert.rejects(
      pushImage([parseReference(`${proxy.host}/doomed/app:1`)], image.item, { concurrency: 1, transportOptions: { retry: { ...FAST, attempts: 3 } } }),
      (error: unknown) => {
        assert.ok(error instanceof RegistryError);
        assert.equal(error.status, 502);
        assert.match(error.message, /^unknown: injected 502 \(PUT http:\/\/127\.0\.0\.1:\d+\/v2\/doomed\/app\/blobs\/uploads\/.*: HTTP 502\); gave up after 3 tries in \d+\.\ds$/);
        return true;
      },
    );
    assert.equal(proxy.pending(), 0);
    assert.deepEqual(requests(start, /\/manifests\//), [], 'no manifest request was sent');
    assert.equal(await manifestExists('doomed/app', '1'), false);
  });

  it('refuses a layout missing a blob before sending anything', async () => {
    const image = await buildImage(join(work, 'incomplete'), { platforms: [{ os: 'linux', architecture: 'amd64' }], seed: 'incomplete' });
    const manifest = JSON.parse((await image.layout.readBlob(image.root.digest)).toString('utf8')) as { layers: { digest: Digest }[] };
    rmSync(image.layout.path(manifest.layers[0]!.digest));
    const start = proxy.seen.length;
    await assert.rejects(pushImage([parseReference(`${proxy.host}/incomplete/app:1`)], layoutItem(await OciLayout.open(image.layout.dir, { create: false }), image.root)), (error: unknown) => {
      assert.ok(error instanceof TsbuildError);
      assert.equal(error.code, 'PUSH');
      assert.match(error.message, /^push: blob sha256:[0-9a-f]{64} of sha256:[0-9a-f]{64} is missing \(no file .*\)$/);
      return true;
    });
    assert.equal(proxy.seen.length, start);
  });
});
