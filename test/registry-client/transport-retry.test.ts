import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256Digest } from '../../layers/digest.js';
import { RegistryError } from '../../registry-client/errors.js';
import { RegistryTransport, type RetryNotice } from '../../registry-client/transport.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const FAST = { baseDelayMs: 20, maxDelayMs: 200, attempts: 4, budgetMs: 20_000 };
const isUpload = (method: string, path: string): boolean => method === 'POST' && path.includes('/blobs/uploads/');

describe('RegistryTransport retries through a fault proxy', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let transport: RegistryTransport;
  let notices: RetryNotice[];
  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
    proxy = await startFaultProxy(registry.host);
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });
  const fresh = (retry: Partial<typeof FAST> = FAST): RegistryTransport => {
    notices = [];
    transport = new RegistryTransport(proxy.host, { credentials: { username: 'alice', password: 'wonderland-secret-1' }, retry, onRetry: (n) => notices.push(n) });
    return transport;
  };
  const seenSince = (start: number): string[] => proxy.seen.slice(start).map((r) => `${r.method} ${r.fault ?? 'ok'}`);

  it('retries 500s and then succeeds', async () => {
    const t = fresh();
    await t.ping();
    const start = proxy.seen.length;
    proxy.inject([{ kind: 'status', status: 500 }, { kind: 'status', status: 503 }]);
    await t.ping();
    assert.deepEqual(seenSince(start), ['GET status', 'GET status', 'GET ok']);
    assert.deepEqual(notices.map((n) => [n.attempt, n.error.status]), [[1, 500], [2, 503]]);
    assert.ok(notices[1]!.delayMs >= notices[0]!.delayMs * 1.2, 'the wait grows');
    await t.close();
  });

  it('honours Retry-After on 429', async () => {
    const t = fresh();
    await t.ping();
    proxy.inject([{ kind: 'status', status: 429, retryAfter: '1' }]);
    const started = Date.now();
    await t.ping();
    const waited = Date.now() - started;
    assert.ok(waited >= 950, `waited ${waited} ms`);
    assert.equal(notices.length, 1);
    assert.equal(notices[0]!.delayMs, 1000);
    assert.equal(notices[0]!.error.code, 'TOOMANYREQUESTS');
    await t.close();
  });

  it('retries dropped connections, re-opening the body of an upload', async () => {
    const t = fresh();
    const content = Buffer.from('uploaded across a dropped connection');
    const digest = sha256Digest(content);
    const startedUpload = await t.request({ method: 'POST', path: '/v2/faults/app/blobs/uploads/', expectStatus: [202] });
    await startedUpload.body.dump();
    const location = new URL(String(startedUpload.headers.location), t.baseUrl);
    location.searchParams.set('digest', digest);
    let opened = 0;
    proxy.inject([{ kind: 'drop' }, { kind: 'drop' }], (method) => method === 'PUT');
    const put = await t.request({
      method: 'PUT',
      path: location.toString(),
      headers: { 'content-type': 'application/octet-stream' },
      body: () => {
        opened++;
        return content;
      },
      expectStatus: [201],
    });
    await put.body.dump();
    assert.equal(opened, 3);
    assert.deepEqual(notices.map((n) => n.error.code), ['CONNECTION', 'CONNECTION']);
    const back = await t.request({ method: 'GET', path: `/v2/faults/app/blobs/${digest}`, expectStatus: [200] });
    assert.deepEqual(Buffer.from(await back.body.arrayBuffer()), content);
    await t.close();
  });

  it('does not resend a POST unless told it may', async () => {
    const t = fresh();
    await t.ping();
    proxy.inject([{ kind: 'status', status: 500 }], isUpload);
    const start = proxy.seen.length;
    await assert.rejects(t.request({ method: 'POST', path: '/v2/faults/app/blobs/uploads/', expectStatus: [202] }), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 500);
      assert.equal(error.temporary, true);
      assert.match(error.message, /^unknown: injected 500 \(POST http:\/\/127\.0\.0\.1:\d+\/v2\/faults\/app\/blobs\/uploads\/: HTTP 500\)$/);
      return true;
    });
    assert.deepEqual(seenSince(start), ['POST status']);
    proxy.inject([{ kind: 'status', status: 502 }], isUpload);
    const response = await t.request({ method: 'POST', path: '/v2/faults/app/blobs/uploads/', resendable: true, expectStatus: [202] });
    await response.body.dump();
    assert.deepEqual(seenSince(start), ['POST status', 'POST status', 'POST ok']);
    await t.close();
  });

  it('gives up clearly after the attempts are used', async () => {
    const t = fresh({ ...FAST, attempts: 3 });
    await t.ping();
    proxy.inject([{ kind: 'status', status: 500 }, { kind: 'drop' }, { kind: 'status', status: 502 }, { kind: 'status', status: 500 }]);
    await assert.rejects(t.ping(), (error: unknown) => {
      assert.ok(error instanceof RegistryError);
      assert.equal(error.status, 502);
      assert.match(error.message, /^unknown: injected 502 \(GET .*: HTTP 502\); gave up after 3 tries in \d+\.\ds$/);
      return true;
    });
    assert.equal(proxy.pending(), 1);
    await t.ping(); // consumes the queued 500 and retries
    assert.equal(proxy.pending(), 0);
    await t.close();
  });

  it('fails at once when Retry-After exceeds the budget', async () => {
    const t = fresh({ ...FAST, budgetMs: 3000 });
    await t.ping();
    proxy.inject([{ kind: 'status', status: 429, retryAfter: '60' }]);
    const started = Date.now();
    await assert.rejects(t.ping(), /^RegistryError: toomanyrequests: injected 429 .*HTTP 429\); gave up after 1 try: the next wait would exceed the 3s retry budget$/);
    assert.ok(Date.now() - started < 1000);
    await t.close();
  });
});
