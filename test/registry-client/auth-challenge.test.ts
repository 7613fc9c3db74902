import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseWwwAuthenticate } from '../../registry-client/auth-challenge.js';

describe('parseWwwAuthenticate', () => {
  it('parses a Bearer challenge with a scope holding commas', () => {
    assert.deepEqual(
      parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'),
      [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' } }],
    );
  });
  it('parses Basic, unquoted values, odd spacing and escapes', () => {
    assert.deepEqual(parseWwwAuthenticate('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
    assert.deepEqual(parseWwwAuthenticate('BEARER  Realm = "r\\"x" , error=insufficient_scope'), [
      { scheme: 'bearer', params: { realm: 'r"x', error: 'insufficient_scope' } },
    ]);
  });
  it('splits several challenges in one header and across headers', () => {
    assert.deepEqual(parseWwwAuthenticate(['Negotiate abc==, Basic realm="a", Bearer realm="b",scope="x:y:pull"', 'Digest realm="d", nonce="n"']), [
      { scheme: 'negotiate', params: { token68: 'abc==' } },
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'b', scope: 'x:y:pull' } },
      { scheme: 'digest', params: { realm: 'd', nonce: 'n' } },
    ]);
  });
  it('returns nothing for an absent header', () => {
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
    assert.deepEqual(parseWwwAuthenticate(''), []);
  });
});
