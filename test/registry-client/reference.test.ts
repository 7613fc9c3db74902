import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import {
  formatReference,
  isLoopbackRegistry,
  isValidRepositoryName,
  isValidTag,
  manifestTarget,
  parseReference,
  registryBaseUrl,
} from '../../registry-client/reference.js';
import { repoRoot } from '../support/repo-root.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const fixtures = join(repoRoot(), 'test/fixtures/distribution-spec');
const specRegex = JSON.parse(readFileSync(join(fixtures, 'name-tag-regex.json'), 'utf8')) as { name_regex: string; tag_regex: string };
const specName = new RegExp(`^(?:${specRegex.name_regex})$`);
const specTag = new RegExp(`^(?:${specRegex.tag_regex})$`);

describe('parseReference', () => {
  const cases: [string, string, Partial<{ registry: string; repository: string; tag: string; digest: string }>][] = [
    ['alpine', 'docker.io/library/alpine:latest', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.19', 'docker.io/library/alpine:3.19', { tag: '3.19' }],
    ['library/alpine', 'docker.io/library/alpine:latest', {}],
    ['user/app', 'docker.io/user/app:latest', { repository: 'user/app' }],
    ['docker.io/alpine', 'docker.io/library/alpine:latest', {}],
    ['index.docker.io/alpine:edge', 'docker.io/library/alpine:edge', { registry: 'docker.io' }],
    ['registry-1.docker.io/user/app', 'docker.io/user/app:latest', {}],
    ['localhost/x', 'localhost/x:latest', { registry: 'localhost', repository: 'x' }],
    ['localhost:5000/a/b/c:v1', 'localhost:5000/a/b/c:v1', { registry: 'localhost:5000', repository: 'a/b/c', tag: 'v1' }],
    ['quay.io/org/img', 'quay.io/org/img:latest', { registry: 'quay.io' }],
    ['127.0.0.1:5000/ns/name:tag', '127.0.0.1:5000/ns/name:tag', { registry: '127.0.0.1:5000' }],
    ['[::1]:5000/ns/name', '[::1]:5000/ns/name:latest', { registry: '[::1]:5000' }],
    [`host:5000/ns/name:tag@${DIGEST}`, `host:5000/ns/name:tag@${DIGEST}`, { tag: 'tag', digest: DIGEST }],
    [`alpine@${DIGEST}`, `docker.io/library/alpine@${DIGEST}`, { digest: DIGEST }],
    [`localhost:5000/x@${DIGEST}`, `localhost:5000/x@${DIGEST}`, { registry: 'localhost:5000', repository: 'x' }],
    ['ab-c__d/e--f_g.h', 'docker.io/ab-c__d/e--f_g.h:latest', { repository: 'ab-c__d/e--f_g.h' }],
    ['Registry.Example/app', 'Registry.Example/app:latest', { registry: 'Registry.Example' }],
    ['localhost:5000', 'docker.io/library/localhost:5000', { repository: 'library/localhost', tag: '5000' }],
  ];
  for (const [input, canonical, fields] of cases) {
    it(`parses ${input}`, () => {
      const ref = parseReference(input);
      assert.equal(formatReference(ref), canonical);
      for (const [key, value] of Object.entries(fields)) assert.equal(ref[key as keyof typeof ref], value, key);
    });
  }

  it('leaves the tag out of a digest-only reference and targets the digest', () => {
    const ref = parseReference(`busybox@${DIGEST}`);
    assert.equal(ref.tag, undefined);
    assert.equal(manifestTarget(ref), DIGEST);
    assert.equal(manifestTarget(parseReference('busybox')), 'latest');
    assert.equal(manifestTarget(parseReference(`busybox:1@${DIGEST}`)), DIGEST);
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['Alpine', /lowercase/],
    ['docker.io/Library/x', /lowercase/],
    ['alpine:', /invalid tag/],
    ['alpine:-bad', /invalid tag/],
    [`alpine:${'t'.repeat(129)}`, /invalid tag/],
    ['alpine@sha256:abc', /digest/],
    [`alpine@sha512:${'a'.repeat(128)}`, /digest/],
    [`alpine@sha256:${'AB'.repeat(32)}`, /digest/],
    ['a//b', /invalid repository name/],
    ['a/', /invalid repository name|missing/],
    ['-a/b', /invalid repository name/],
    ['a__-b', /invalid repository name/],
    ['ns/a..b', /invalid repository name/],
    ['host:5000/', /missing|invalid repository/],
    ['bad_host.com:5000/x', /invalid registry host/],
    ['-host.com/x', /invalid registry host/],
    [`example.com/${'a'.repeat(250)}`, /longer than 255/],
    ['a b', /invalid/],
  ];
  for (const [input, why] of invalid) {
    it(`rejects ${JSON.stringify(input.length > 40 ? `${input.slice(0, 40)}…` : input)}`, () => {
      assert.throws(
        () => parseReference(input),
        (error: unknown) => error instanceof TsbuildError && error.code === 'BAD_REFERENCE' && why.test(error.message) && !error.message.includes('\n'),
      );
    });
  }
});

describe('distribution-spec name and tag rules', () => {
  const names = [
    'a', 'abc', 'a/b', 'a.b', 'a_b', 'a__b', 'a___b', 'a-b', 'a--b', 'a-_b', 'a._b', 'a/b/c/d', 'a.b.c/d-e_f__g',
    '0', '9/8', 'a/', '/a', 'a//b', '.a', 'a.', '_a', 'a_', '-a', 'a-', 'A', 'aB', 'a b', 'a:b', 'a@b', 'a..b', 'a/.b',
  ];
  for (const name of names) {
    it(`name ${JSON.stringify(name)} matches the spec's regex exactly when valid`, () => {
      const expected = specName.test(name);
      assert.equal(isValidRepositoryName(name), expected);
      // A reference on a registry host parses exactly when its name is valid.
      const parses = (() => {
        try {
          return parseReference(`registry.test/${name}:v1`).repository === name;
        } catch {
          return false;
        }
      })();
      assert.equal(parses, expected);
    });
  }
  const tags = ['latest', 'v1.2.3', '_x', 'A-b_c.d', '1', 'x'.repeat(128), 'x'.repeat(129), '.x', '-x', 'a/b', 'a:b', 'a+b', ''];
  for (const tag of tags) {
    it(`tag ${JSON.stringify(tag.length > 20 ? `${tag.slice(0, 8)}…(${tag.length})` : tag)} matches the spec's regex`, () => {
      assert.equal(isValidTag(tag), specTag.test(tag));
    });
  }
  it('the valid and invalid samples both occur', () => {
    assert.ok(names.some((n) => specName.test(n)) && names.some((n) => !specName.test(n)));
    assert.ok(tags.some((t) => specTag.test(t)) && tags.some((t) => !specTag.test(t)));
  });
});

describe('registryBaseUrl', () => {
  it('uses HTTPS for ordinary hosts and Docker Hub\'s API host', () => {
    assert.equal(registryBaseUrl('quay.io'), 'https://quay.io');
    assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io');
    assert.equal(registryBaseUrl('registry.example.com:5000'), 'https://registry.example.com:5000');
    assert.equal(registryBaseUrl('127.example.com'), 'https://127.example.com');
  });
  it('uses plain HTTP for localhost, 127.0.0.0/8 and ::1', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000', '[::1]']) {
      assert.equal(isLoopbackRegistry(host), true, host);
      assert.ok(registryBaseUrl(host).startsWith('http://'), host);
    }
    for (const host of ['128.0.0.1', '10.0.0.1:5000', 'localhost.example.com', '[::2]:5000']) assert.equal(isLoopbackRegistry(host), false, host);
  });
  it('follows an explicit insecure setting both ways', () => {
    assert.equal(registryBaseUrl('registry.internal:5000', true), 'http://registry.internal:5000');
    assert.equal(registryBaseUrl('127.0.0.1:5000', false), 'https://127.0.0.1:5000');
  });
});
