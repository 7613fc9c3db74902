import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { sha256Digest } from '../../layers/digest.js';
import { RegistryError } from '../../registry-client/errors.js';
import { RegistryTransport, type TransportOptions } from '../../registry-client/transport.js';
import { freePort, startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';

const PASSWORD = 'wonderland-secret-1';
const ALICE = { username: 'alice', password: PASSWORD };

/** The spec's endpoint table: id → success and failure statuses. */
const endpoints = new Map(
  readFileSync(join(repoRoot(), 'test/fixtures/distribution-spec/endpoints.tsv'), 'utf8')
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('id\t'))
    .map((line) => {
      const [id, , , success, failure] = line.split('\t') as [string, string, string, string, string];
      return [id, { success: success.split('/').map(Number), failure: failure.split('/').map(Number) }] as const;
    }),
);

async function withTransport<T>(host: string, options: TransportOptions, action: (t: RegistryTransport) => Promise<T>): Promise<T> {
  const transport = new RegistryTransport(host, options);
  try {
    return await action(transport);
  } finally {
    await transport.close();
  }
}

async function rejectsWith(promise: Promise<unknown>, code: string | RegExp, pattern: RegExp): Promise<RegistryError> {
  let caught: unknown;
  await promise.catch((error: unknown) => {
    caught = error;
  });
  assert.ok(caught instanceof RegistryError, `expected a RegistryError, got ${String(caught)}`);
  if (typeof code === 'string') assert.equal(caught.code, code, caught.message);
  else assert.match(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes(PASSWORD), 'the password leaked into the message');
  assert.ok(!caught.message.includes('\n'));
  return caught;
}

/** Pushes `content` as a blob with a monolithic POST + PUT and returns its digest. */
async function pushBlob(t: RegistryTransport, repo: string, content: Buffer, asStream = false): Promise<string> {
  const digest = sha256Digest(content);
  const scope = `repository:${repo}:pull,push`;
  const started = await t.request({ method: 'POST', path: `/v2/${repo}/blobs/uploads/`, scope, expectStatus: [202] });
  await started.body.dump();
  const location = new URL(String(started.headers.location), t.baseUrl);
  location.searchParams.set('digest', digest);
  const put = await t.request({
    method: 'PUT',
    path: location.toString(),
    scope,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(content.length) },
    body: () => (asStream ? Readable.from([content.subarray(0, 3), content.subarray(3)]) : content),
    expectStatus: [201],
  });
  await put.body.dump();
  return digest;
}

async function getBlob(t: RegistryTransport, repo: string, digest: string): Promise<Buffer> {
  const response = await t.request({ method: 'GET', path: `/v2/${repo}/blobs/${digest}`, scope: `repository:${repo}:pull`, expectStatus: [200] });
  return Buffer.from(await response.body.arrayBuffer());
}

describe('RegistryTransport against a plain registry', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'plain' });
  });
  after(() => registry?.stop());

  it('answers GET /v2/ anonymously with the spec\'s success status', async () => {
    await withTransport(registry.host, {}, async (t) => {
      assert.equal(t.baseUrl, `http://${registry.host}`);
      const response = await t.request({ method: 'GET', path: '/v2/', expectStatus: endpoints.get('end-1')!.success });
      await response.body.dump();
      assert.equal(response.status, 200);
    });
  });

  it('pushes a blob from a buffer and a stream and reads it back', async () => {
    await withTransport(registry.host, {}, async (t) => {
      const content = Buffer.from('plain registry blob content');
      const digest = await pushBlob(t, 'plain/app', content);
      assert.deepEqual(await getBlob(t, 'plain/app', digest), content);
      const streamed = Buffer.from('streamed blob content, in two chunks');
      const streamedDigest = await pushBlob(t, 'plain/app', streamed, true);
      assert.deepEqual(await getBlob(t, 'plain/app', streamedDigest), streamed);
    });
  });

  it('reports an unknown manifest and an unknown blob', async () => {
    await withTransport(registry.host, {}, async (t) => {
      const failure = endpoints.get('end-3')!.failure;
      const error = await rejectsWith(
        t.request({ method: 'GET', path: '/v2/no/such/repo/manifests/v9', expectStatus: [200] }),
        /^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/,
        /^(manifest|name) unknown: no\/such\/repo:v9 \(GET http:\/\/127\.0\.0\.1:\d+\/v2\/no\/such\/repo\/manifests\/v9: HTTP 404\)$/,
      );
      assert.ok(failure.includes(error.status!));
      assert.equal(error.temporary, false);
      await rejectsWith(
        t.request({ method: 'GET', path: `/v2/plain/app/blobs/sha256:${'1'.repeat(64)}`, expectStatus: [200] }),
        'BLOB_UNKNOWN',
        /^blob unknown: (blob unknown to registry: )?plain\/app@sha256:1{64} \(GET /,
      );
      // HEAD has no body: the code comes from the status.
      await rejectsWith(t.request({ method: 'HEAD', path: `/v2/plain/app/blobs/sha256:${'1'.repeat(64)}`, expectStatus: [200] }), 'NOT_FOUND', /^not found: /);
    });
  });

  it('fails fast and clearly for an unreachable host', async () => {
    const port = await freePort();
    await withTransport(`127.0.0.1:${port}`, { retry: { baseDelayMs: 1000 } }, async (t) => {
      const started = Date.now();
      const error = await rejectsWith(t.ping(), 'UNREACHABLE', new RegExp(`^unreachable: cannot connect to registry 127\\.0\\.0\\.1:${port}: connection refused`));
      assert.equal(error.temporary, false);
      assert.ok(Date.now() - started < 900, 'a refused connection is not retried');
    });
  });
});

describe('RegistryTransport against a registry with htpasswd Basic auth', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd' });
  });
  after(() => registry?.stop());

  it('refuses anonymous access and accepts the right password', async () => {
    await withTransport(registry.host, {}, async (t) => {
      await rejectsWith(t.ping(), 'UNAUTHORIZED', /^unauthorized: authentication required \(GET .*: HTTP 401, anonymously\)$/);
    });
    await withTransport(registry.host, { credentials: ALICE }, async (t) => {
      await t.ping();
      const content = Buffer.from('basic auth blob');
      const digest = await pushBlob(t, 'basic/app', content);
      assert.deepEqual(await getBlob(t, 'basic/app', digest), content);
      await rejectsWith(t.request({ method: 'GET', path: '/v2/basic/app/manifests/latest', expectStatus: [200] }), /^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/, /unknown: basic\/app:latest/);
    });
  });

  it('says unauthorized for a wrong password without showing it', async () => {
    await withTransport(registry.host, { credentials: { username: 'alice', password: `${PASSWORD}-wrong` } }, async (t) => {
      const error = await rejectsWith(t.ping(), 'UNAUTHORIZED', /^unauthorized: .*the credentials of user alice were refused\)$/);
      assert.ok(!error.message.includes('-wrong'));
      assert.equal(error.status, 401);
    });
  });
});

describe('RegistryTransport against a registry with token auth', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'token', token: { refreshTokens: { 'identity-token-42': 'alice' } } });
  });
  after(() => registry?.stop());

  it('gets an anonymous token for GET /v2/ and pull, but not for push', async () => {
    const log = registry.tokenServer!.requests;
    const before = log.length;
    await withTransport(registry.host, {}, async (t) => {
      await t.ping();
      await rejectsWith(t.request({ method: 'GET', path: '/v2/anon/app/manifests/x', scope: 'repository:anon/app:pull', expectStatus: [200] }), /UNKNOWN$/, /unknown: anon\/app:x/);
      await rejectsWith(
        t.request({ method: 'POST', path: '/v2/anon/app/blobs/uploads/', scope: 'repository:anon/app:pull,push', expectStatus: [202] }),
        'UNAUTHORIZED',
        /^unauthorized: .*HTTP 401, anonymously\)$/,
      );
    });
    const mine = log.slice(before);
    assert.ok(mine.every((r) => r.via === 'anonymous' && r.status === 200));
    assert.deepEqual(mine[0]!.scopes, []);
    assert.ok(mine.some((r) => r.scopes.includes('repository:anon/app:pull,push') && r.granted[0]?.actions.join(',') === 'pull'));
  });

  it('fetches a scoped token with Basic credentials once and reuses it until expiry', async () => {
    const log = registry.tokenServer!.requests;
    const before = log.length;
    await withTransport(registry.host, { credentials: ALICE }, async (t) => {
      const content = Buffer.from('token auth blob');
      const digest = await pushBlob(t, 'team/app', content);
      assert.deepEqual(await getBlob(t, 'team/app', digest), content);
      assert.deepEqual(await getBlob(t, 'team/app', digest), content);
    });
    const mine = log.slice(before);
    assert.ok(mine.every((r) => r.via === 'basic' && r.subject === 'alice' && r.status === 200), JSON.stringify(mine));
    const pushTokens = mine.filter((r) => r.scopes.join(' ') === 'repository:team/app:pull,push');
    const pullTokens = mine.filter((r) => r.scopes.join(' ') === 'repository:team/app:pull');
    assert.equal(pushTokens.length, 1, 'one token for POST and PUT');
    assert.deepEqual(pushTokens[0]!.granted, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    assert.equal(pullTokens.length, 1, 'one token for both GETs');
  });

  it('exchanges an identity token with the OAuth2 POST form', async () => {
    const log = registry.tokenServer!.requests;
    const before = log.length;
    await withTransport(registry.host, { credentials: { identityToken: 'identity-token-42' } }, async (t) => {
      const digest = await pushBlob(t, 'idtoken/app', Buffer.from('via refresh token'));
      assert.equal((await getBlob(t, 'idtoken/app', digest)).toString(), 'via refresh token');
    });
    const mine = log.slice(before);
    assert.ok(mine.length >= 2 && mine.every((r) => r.method === 'POST' && r.via === 'refresh_token' && r.subject === 'alice'));
    await withTransport(registry.host, { credentials: { identityToken: 'identity-token-revoked' } }, async (t) => {
      const error = await rejectsWith(t.ping(), 'UNAUTHORIZED', /^unauthorized: incorrect username or password \(POST http:\/\/127\.0\.0\.1:\d+\/token: HTTP 401/);
      assert.ok(!error.message.includes('identity-token-revoked'));
    });
  });

  it('says unauthorized for a wrong password, naming the token request but not the password', async () => {
    await withTransport(registry.host, { credentials: { username: 'alice', password: `${PASSWORD}-wrong` } }, async (t) => {
      const error = await rejectsWith(
        t.request({ method: 'GET', path: '/v2/team/app/manifests/latest', scope: 'repository:team/app:pull', expectStatus: [200] }),
        'UNAUTHORIZED',
        /^unauthorized: incorrect username or password \(GET http:\/\/127\.0\.0\.1:\d+\/token\?service=tsbuild-test-registry&scope=repository%3Ateam%2Fapp%3Apull&account=alice: HTTP 401, token request for repository:team\/app:pull\)$/,
      );
      assert.ok(!error.message.includes('-wrong'));
    });
  });

  it('reports an unknown repository with an authenticated token', async () => {
    await withTransport(registry.host, { credentials: ALICE }, async (t) => {
      await rejectsWith(
        t.request({ method: 'GET', path: '/v2/never/pushed/manifests/v1', scope: 'repository:never/pushed:pull', expectStatus: [200] }),
        /^(MANIFEST_UNKNOWN|NAME_UNKNOWN)$/,
        /^(manifest|name) unknown: never\/pushed:v1 /,
      );
    });
  });
});

describe('RegistryTransport over HTTPS', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry({ auth: 'htpasswd', tls: true });
  });
  after(() => registry?.stop());

  it('trusts the registry only with its CA file', async () => {
    await withTransport(registry.host, { insecure: false, credentials: ALICE }, async (t) => {
      assert.equal(t.baseUrl, `https://${registry.host}`);
      await rejectsWith(t.ping(), 'TLS', /^tls: secure connection to 127\.0\.0\.1:\d+ failed: .*\[UNABLE_TO_VERIFY_LEAF_SIGNATURE\]/);
    });
    await withTransport(registry.host, { insecure: false, credentials: ALICE, caFile: registry.caFile! }, async (t) => {
      await t.ping();
      const digest = await pushBlob(t, 'tls/app', Buffer.from('over tls'));
      assert.equal((await getBlob(t, 'tls/app', digest)).toString(), 'over tls');
    });
  });

  it('rejects an unreadable CA file at construction', () => {
    assert.throws(() => new RegistryTransport(registry.host, { caFile: join(registry.dir, 'missing.pem') }), /cannot read registry CA file/);
    assert.throws(() => new RegistryTransport(registry.host, { caFile: join(registry.dir, 'config.yml') }), /holds no PEM certificate/);
  });
});
