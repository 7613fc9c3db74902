import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import { credentialFiles, resolveCredentials, runCredentialHelper } from '../../registry-client/credentials.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('resolveCredentials', () => {
  let dir: string;
  let binDir: string;
  let helperLog: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-creds-'));
    binDir = join(dir, 'bin');
    mkdirSync(binDir);
    helperLog = join(dir, 'helper.log');
    // A credential helper speaking Docker's protocol: server URL on stdin, JSON on stdout.
    const helper = join(binDir, 'docker-credential-testhelper');
    writeFileSync(
      helper,
      `#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
printf '%s\\n' "$server" >> '${helperLog}'
case "$server" in
  helper.example.com) printf '{"ServerURL":"%s","Username":"hank","Secret":"helper-pass-9"}' "$server" ;;
  token.example.com) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-abc-123"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-pass-7"}' "$server" ;;
  broken.example.com) echo 'keychain locked' >&2; exit 1 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
`,
    );
    chmodSync(helper, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const envFor = (name: string, config: unknown, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const configDir = join(dir, name);
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'config.json'), JSON.stringify(config));
    return { DOCKER_CONFIG: configDir, HOME: join(dir, 'nohome'), PATH: `${binDir}:/usr/bin:/bin`, ...extra };
  };

  it('reads base64 auth, username/password and identity tokens from auths', async () => {
    const env = envFor('auths', {
      auths: {
        'registry.example.com': { auth: b64('ann:pa:ss:word') },
        'https://other.example.com/v1/': { username: 'bob', password: 'bob-pass' },
        'idp.example.com:5000': { identitytoken: 'refresh-xyz' },
        'empty.example.com': {},
      },
    });
    assert.deepEqual(await resolveCredentials('registry.example.com', { env }), { username: 'ann', password: 'pa:ss:word' });
    assert.deepEqual(await resolveCredentials('other.example.com', { env }), { username: 'bob', password: 'bob-pass' });
    assert.deepEqual(await resolveCredentials('idp.example.com:5000', { env }), { identityToken: 'refresh-xyz' });
    assert.equal(await resolveCredentials('idp.example.com', { env }), undefined);
    assert.equal(await resolveCredentials('empty.example.com', { env }), undefined);
    assert.equal(await resolveCredentials('unknown.example.com', { env }), undefined);
  });

  it('finds Docker Hub credentials under its v1 key for every Hub alias', async () => {
    const env = envFor('hub', { auths: { 'https://index.docker.io/v1/': { auth: b64('hubber:hub-secret') } } });
    for (const host of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.deepEqual(await resolveCredentials(host, { env }), { username: 'hubber', password: 'hub-secret' }, host);
    }
  });

  it('defaults to ~/.docker/config.json', async () => {
    const home = join(dir, 'home');
    mkdirSync(join(home, '.docker'), { recursive: true });
    writeFileSync(join(home, '.docker', 'config.json'), JSON.stringify({ auths: { 'h.example.com': { auth: b64('u:p-home') } } }));
    assert.deepEqual(credentialFiles({ HOME: home }), [join(home, '.docker', 'config.json')]);
    assert.deepEqual(await resolveCredentials('h.example.com', { env: { HOME: home } }), { username: 'u', password: 'p-home' });
  });

  it('prefers REGISTRY_AUTH_FILE over the Docker config', async () => {
    const authFile = join(dir, 'auth.json');
    writeFileSync(authFile, JSON.stringify({ auths: { 'both.example.com': { auth: b64('from-auth-file:x1y2') } } }));
    const env = envFor('both', { auths: { 'both.example.com': { auth: b64('from-docker:z9') }, 'only.example.com': { auth: b64('d:only-docker') } } }, { REGISTRY_AUTH_FILE: authFile });
    assert.deepEqual(await resolveCredentials('both.example.com', { env }), { username: 'from-auth-file', password: 'x1y2' });
    assert.deepEqual(await resolveCredentials('only.example.com', { env }), { username: 'd', password: 'only-docker' });
  });

  it('runs credHelpers and credsStore helpers with the server on stdin', async () => {
    writeFileSync(helperLog, '');
    const env = envFor('helpers', {
      credsStore: 'testhelper',
      credHelpers: { 'token.example.com': 'testhelper' },
      auths: { 'fallback.example.com': { auth: b64('fb:fallback-pass') } },
    });
    assert.deepEqual(await resolveCredentials('helper.example.com', { env }), { username: 'hank', password: 'helper-pass-9' });
    assert.deepEqual(await resolveCredentials('token.example.com', { env }), { identityToken: 'refresh-abc-123' });
    assert.deepEqual(await resolveCredentials('docker.io', { env }), { username: 'hubuser', password: 'hub-pass-7' });
    // "credentials not found" from the store falls back to auths, then to anonymous.
    assert.deepEqual(await resolveCredentials('fallback.example.com', { env }), { username: 'fb', password: 'fallback-pass' });
    assert.equal(await resolveCredentials('nothing.example.com', { env }), undefined);
    assert.deepEqual(readFileSync(helperLog, 'utf8').trim().split('\n'), [
      'helper.example.com',
      'token.example.com',
      'https://index.docker.io/v1/',
      'fallback.example.com',
      'nothing.example.com',
    ]);
  });

  it('reports a failing or missing helper in one line without secrets', async () => {
    const env = envFor('broken', { credHelpers: { 'broken.example.com': 'testhelper', 'missing.example.com': 'nosuchhelper' } });
    await assert.rejects(resolveCredentials('broken.example.com', { env }), (error: unknown) => {
      assert.ok(error instanceof TsbuildError);
      assert.equal(error.code, 'CREDENTIALS');
      assert.match(error.message, /docker-credential-testhelper failed for broken\.example\.com \(exit 1\): keychain locked/);
      return true;
    });
    await assert.rejects(resolveCredentials('missing.example.com', { env }), /docker-credential-nosuchhelper not found in PATH/);
    await assert.rejects(runCredentialHelper('../evil', 'x', { env }), /invalid credential helper name/);
  });

  it('rejects malformed config files without quoting them', async () => {
    const configDir = join(dir, 'malformed');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'config.json'), '{"auths": {"x.example.com": {"auth": "c2VjcmV0LXNob3VsZC1ub3Qtc2hvdw=="}');
    await assert.rejects(resolveCredentials('x.example.com', { env: { DOCKER_CONFIG: configDir } }), (error: unknown) => {
      assert.ok(error instanceof TsbuildError);
      assert.match(error.message, /config\.json is not valid JSON/);
      assert.ok(!error.message.includes('c2VjcmV0'));
      return true;
    });
    writeFileSync(join(configDir, 'config.json'), JSON.stringify({ auths: { 'x.example.com': { auth: b64('no-colon') } } }));
    await assert.rejects(resolveCredentials('x.example.com', { env: { DOCKER_CONFIG: configDir } }), /not base64 of user:password/);
  });
});
