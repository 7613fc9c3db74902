import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { assertValidImageSpec, validateImageSpec, type ImageSpecKind } from './image-spec-schema.js';
import { repoRoot } from './repo-root.js';

const fixtures = join(repoRoot(), 'test', 'fixtures', 'image-spec');

interface VectorCase {
  index: number;
  comment?: string;
  body: string;
  fail?: boolean;
  sha256OfBody?: string;
}

interface VectorFile {
  validatorSchemas: Record<string, string>;
  convertFormats: Record<string, string>;
  suites: Record<string, { validator: string; schema: string; cases: VectorCase[] }>;
}

interface MdExamples {
  examples: Array<{ source: string; title: string; mediatype: string; expect: string; body: string }>;
}

const kindOfSchemaFile: Record<string, ImageSpecKind> = {
  'image-manifest-schema.json': 'manifest',
  'image-index-schema.json': 'index',
  'config-schema.json': 'config',
  'content-descriptor.json': 'descriptor',
  'image-layout-schema.json': 'layout',
};

const kindOfMediaType: Record<string, ImageSpecKind> = {
  'application/vnd.oci.image.manifest.v1+json': 'manifest',
  'application/vnd.oci.image.index.v1+json': 'index',
  'application/vnd.oci.image.config.v1+json': 'config',
  'application/vnd.oci.descriptor.v1+json': 'descriptor',
  'application/vnd.oci.layout.header.v1+json': 'layout',
};

function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(join(fixtures, name), 'utf8')) as T;
}

/** Problems with a JSON text: a parse failure counts as one. */
function problemsOfText(kind: ImageSpecKind, text: string): string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return [`not JSON: ${(error as Error).message}`];
  }
  return validateImageSpec(kind, value);
}

const vectors = readFixture<VectorFile>('schema-vectors.json');

describe('image-spec schema vectors', () => {
  test('the corpus holds the 71 vectors', () => {
    const total = Object.values(vectors.suites).reduce((n, suite) => n + suite.cases.length, 0);
    assert.equal(total, 71);
  });

  for (const [suiteName, suite] of Object.entries(vectors.suites)) {
    const schemaFile = vectors.validatorSchemas[suite.validator];
    const kind = schemaFile === undefined ? undefined : kindOfSchemaFile[schemaFile];
    const backwardsCompatible = suiteName.startsWith('TestBackwardsCompatibility');

    for (const vector of suite.cases) {
      const title = (vector.comment ?? '').slice(0, 90);
      test(`${suiteName} #${vector.index} (${vector.fail ? 'fail' : 'pass'}): ${title}`, () => {
        assert.equal(schemaFile, suite.schema, 'suite validator and schema disagree');
        assert.ok(kind, `no kind for ${suite.validator}`);
        let body = vector.body;
        if (backwardsCompatible) {
          // Upstream pins the exact text, then rewrites Docker media types to OCI ones.
          const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
          assert.equal(digest, vector.sha256OfBody);
          for (const [docker, oci] of Object.entries(vectors.convertFormats)) {
            body = body.split(docker).join(oci);
          }
        }
        const problems = problemsOfText(kind, body);
        if (vector.fail) assert.notDeepEqual(problems, [], 'expected the vector to be rejected');
        else assert.deepEqual(problems, []);
      });
    }
  }
});

describe('image-spec examples from the spec text', () => {
  const { examples } = readFixture<MdExamples>('md-examples.json');

  test('the corpus holds the 10 examples', () => {
    assert.equal(examples.length, 10);
  });

  examples.forEach((example, i) => {
    test(`#${i} ${example.source}: ${example.title}`, () => {
      assert.equal(example.expect, 'valid');
      const kind = kindOfMediaType[example.mediatype];
      assert.ok(kind, `no kind for ${example.mediatype}`);
      assertValidImageSpec(kind, JSON.parse(example.body));
    });
  });
});

describe('checks beyond the schemas apply inside manifests, indexes and configs', () => {
  const hex = 'a'.repeat(64);
  const layer = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    size: 10,
    digest: `sha256:${hex}`,
  };
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: 2, digest: `sha256:${hex}` },
    layers: [layer],
  };
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${hex}`] },
  };

  test('valid documents have no problems', () => {
    assert.deepEqual(validateImageSpec('manifest', manifest), []);
    assert.deepEqual(validateImageSpec('config', config), []);
    assert.deepEqual(validateImageSpec('index', { schemaVersion: 2, manifests: [manifest.config] }), []);
  });

  test('an uppercase layer digest in a manifest is reported at its path', () => {
    const bad = { ...manifest, layers: [layer, { ...layer, digest: `sha256:${hex.toUpperCase()}` }] };
    const problems = validateImageSpec('manifest', bad);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /^\/layers\/1\/digest: /);
  });

  test('a sha256 digest of the wrong length is rejected; unregistered algorithms are not checked', () => {
    assert.notDeepEqual(validateImageSpec('descriptor', { ...layer, digest: 'sha256:abc' }), []);
    assert.deepEqual(validateImageSpec('descriptor', { ...layer, digest: 'sha384:ABC' }), []);
  });

  test('unpadded data in an index entry is rejected, padded data accepted', () => {
    const entry = { ...manifest.config, data: 'e30' };
    assert.match(validateImageSpec('index', { schemaVersion: 2, manifests: [entry] }).join('\n'), /manifests\/0\/data/);
    const padded = { ...entry, data: 'e30=' };
    assert.deepEqual(validateImageSpec('index', { schemaVersion: 2, manifests: [padded] }), []);
  });

  test('config Env entries without "=" and malformed diff_ids are rejected', () => {
    const badEnv = { ...config, config: { Env: ['PATH=/bin', '=x', 'NOVALUE'] } };
    assert.deepEqual(
      validateImageSpec('config', badEnv).map((p) => p.split(':')[0]),
      ['/config/Env/1', '/config/Env/2'],
    );
    const badDiffIds = { ...config, rootfs: { type: 'layers', diff_ids: [`sha256:${hex.toUpperCase()}`, 'nope'] } };
    assert.deepEqual(
      validateImageSpec('config', badDiffIds).map((p) => p.split(':')[0]),
      ['/rootfs/diff_ids/0', '/rootfs/diff_ids/1'],
    );
  });

  test('created must be an RFC 3339 date-time', () => {
    assert.deepEqual(validateImageSpec('config', { ...config, created: '2024-01-02T03:04:05Z' }), []);
    assert.notDeepEqual(validateImageSpec('config', { ...config, created: '2024-01-02 03:04' }), []);
  });

  test('assertValidImageSpec throws an AssertionError naming each problem', () => {
    assert.throws(
      () => assertValidImageSpec('manifest', { ...manifest, layers: [] }),
      (error: unknown) =>
        error instanceof assert.AssertionError && /invalid OCI manifest:\n {2}\/layers: /.test(error.message),
    );
    assert.doesNotThrow(() => assertValidImageSpec('manifest', manifest));
  });
});
