import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import { errorFromResponse, redactUrl, RegistryError } from '../../registry-client/errors.js';

describe('registry errors', () => {
  it('redacts user info and secret-looking query values from URLs', () => {
    assert.equal(redactUrl('https://user:pw@r.example.com/v2/x/blobs/uploads/abc?_state=SECRETSTATE&digest=sha256%3Aab'), 'https://r.example.com/v2/x/blobs/uploads/abc?_state=***&digest=sha256%3Aab');
    assert.equal(redactUrl('https://cdn.example.com/blob?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&n=1'), 'https://cdn.example.com/blob?X-Amz-Signature=***&X-Amz-Credential=***&n=1');
  });
  it('builds one-line messages from the registry error body', () => {
    const body = JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'x' } }, { code: 'DENIED', message: 'no' }] });
    const error = errorFromResponse({ method: 'GET', url: 'http://127.0.0.1:5000/v2/team/app/manifests/v1', status: 404, bodyText: body, secrets: [] });
    assert.ok(error instanceof RegistryError && error instanceof TsbuildError);
    assert.equal(error.code, 'NAME_UNKNOWN');
    assert.deepEqual(error.errorCodes, ['NAME_UNKNOWN', 'DENIED']);
    assert.equal(error.status, 404);
    assert.equal(error.temporary, false);
    assert.equal(error.message, 'name unknown: repository name not known to registry; no: team/app:v1 (GET http://127.0.0.1:5000/v2/team/app/manifests/v1: HTTP 404)');
  });
  it('derives codes from the status when the body is not the registry\'s JSON, and marks 429/5xx temporary', () => {
    const cases: [number, string, boolean][] = [[401, 'UNAUTHORIZED', false], [403, 'DENIED', false], [404, 'NOT_FOUND', false], [429, 'TOOMANYREQUESTS', true], [500, 'SERVER_ERROR', true], [503, 'SERVER_ERROR', true], [501, 'SERVER_ERROR', false]];
    for (const [status, code, temporary] of cases) {
      const error = errorFromResponse({ method: 'HEAD', url: `http://h/v2/a/blobs/sha256:${'0'.repeat(64)}`, status, bodyText: '<html>oops</html>', secrets: [] });
      assert.equal(error.code, code, String(status));
      assert.equal(error.temporary, temporary, String(status));
      assert.match(error.message, new RegExp(`^${code.toLowerCase().replace(/_/g, ' ')}: a@sha256:0+ \\(HEAD`));
    }
  });
  it('removes secrets a server echoes back', () => {
    const body = JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad password hunter2-secret for alice' }] });
    const error = errorFromResponse({ method: 'GET', url: 'http://h/v2/', status: 401, bodyText: body, secrets: ['hunter2-secret', undefined] });
    assert.equal(error.message, 'unauthorized: bad password *** for alice (GET http://h/v2/: HTTP 401)');
  });
});
