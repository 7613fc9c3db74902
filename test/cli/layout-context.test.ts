import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { layoutSelector, parseBuildContexts } from '../../builder/plan/build-contexts.js';
import type { Descriptor } from '../../layers/types.js';
import { unpackWithUmoci } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const digest = `sha256:${'ab'.repeat(32)}`;

describe('--build-context NAME=oci-layout://…', () => {
  test('parses DIR, DIR:TAG, DIR:NAME:TAG and DIR@sha256 as buildx does', () => {
    const parsed = parseBuildContexts(
      ['a=oci-layout://./layout', 'b=oci-layout://./layout:stable', 'c=oci-layout://./layout:app:1', 'd=oci-layout:///abs/layout@' + digest, 'e=oci-layout://./layout:app:1@' + digest],
      '/work',
    );
    const view = (name: string) => {
      const c = parsed.get(name)!;
      return c.kind === 'oci-layout' ? [c.layoutDir, c.reference] : [];
    };
    assert.deepEqual(view('a'), ['/work/layout', 'latest']);
    assert.deepEqual(view('b'), ['/work/layout', 'stable']);
    assert.deepEqual(view('c'), ['/work/layout', 'app:1']);
    assert.deepEqual(view('d'), ['/abs/layout', digest]);
    assert.deepEqual(view('e'), ['/work/layout', digest]);
    assert.throws(() => parseBuildContexts(['x=oci-layout://./layout@sha256:12'], '/work'), /invalid digest "sha256:12".*expected sha256: and 64 hex digits/);
    assert.throws(() => parseBuildContexts(['x=oci-layout://:tag'], '/work'), /no directory/);
  });

  test('a NAME:TAG reference finds the image by its ref.name or its normalised image name', () => {
    const entry = (digestHex: string, annotations: Record<string, string>): Descriptor => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${digestHex.repeat(64)}`, size: 1, annotations }) as Descriptor;
    const entries = [
      entry('1', { 'org.opencontainers.image.ref.name': 'app:1' }),
      entry('2', { 'io.containerd.image.name': 'docker.io/library/web:2', 'org.opencontainers.image.ref.name': '2' }),
      entry('3', { 'org.opencontainers.image.ref.name': 'registry.example.com/team/api:3' }),
    ];
    assert.deepEqual(layoutSelector(entries, 'app:1'), { tag: 'app:1' });
    assert.deepEqual(layoutSelector(entries, 'web:2'), { digest: `sha256:${'2'.repeat(64)}` });
    assert.deepEqual(layoutSelector(entries, 'registry.example.com/team/api:3'), { tag: 'registry.example.com/team/api:3' });
    assert.deepEqual(layoutSelector(entries, 'docker.io/library/app:1'), { digest: `sha256:${'1'.repeat(64)}` });
    assert.deepEqual(layoutSelector(entries, digest), { digest });
    assert.deepEqual(layoutSelector(entries, 'other:9'), { tag: 'other:9' });
  });
});

describe('building FROM an image in an OCI layout named NAME:TAG or by digest', () => {
  let work: { dir: string; cleanup: () => Promise<void> };
  const env = (): NodeJS.ProcessEnv => ({ SOURCE_DATE_EPOCH: '1700000000', TSBUILD_CACHE_DIR: path.join(work.dir, 'cache') });
  before(async () => {
    work = await tempDir('tsbuild-layout-context');
  });
  after(async () => work.cleanup());

  test('oci-layout://DIR:app:1 and oci-layout://DIR@sha256:… select the base built into that layout', async () => {
    const baseCtx = path.join(work.dir, 'base');
    await mkdir(baseCtx);
    await writeFile(path.join(baseCtx, 'Dockerfile'), 'FROM scratch\nCOPY one.txt /one.txt\n');
    await writeFile(path.join(baseCtx, 'one.txt'), 'one\n');
    const layout = path.join(work.dir, 'layout');
    const built = await tsbuild(['-t', 'app:1', '-o', `type=oci,dest=${layout}`, '--progress', 'plain', baseCtx], env());
    assert.equal(built.code, 0, built.stderr);
    const baseDigest = built.stdout.trim();

    const ctx = path.join(work.dir, 'app');
    await mkdir(ctx);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM base\nCOPY two.txt /two.txt\n');
    await writeFile(path.join(ctx, 'two.txt'), 'two\n');
    for (const [label, source] of [['tag', `oci-layout://${layout}:app:1`], ['digest', `oci-layout://${layout}@${baseDigest}`]] as const) {
      const dest = path.join(work.dir, `out-${label}`);
      const result = await tsbuild(['--build-context', `base=${source}`, '-t', 'app:2', '-o', `type=oci,dest=${dest}`, '--progress', 'plain', ctx], env());
      assert.equal(result.code, 0, result.stderr);
      const { rootfs, cleanup } = await unpackWithUmoci(dest, 'app:2');
      try {
        assert.equal(await readFile(path.join(rootfs, 'one.txt'), 'utf8'), 'one\n');
        assert.equal(await readFile(path.join(rootfs, 'two.txt'), 'utf8'), 'two\n');
      } finally {
        await cleanup();
      }
    }
    const missing = await tsbuild(['--build-context', `base=oci-layout://${layout}:app:9`, '-o', `type=oci,dest=${path.join(work.dir, 'x')}`, ctx], env());
    assert.equal(missing.code, 5, "an image failure");
    assert.match(missing.stderr, /has no image tagged "app:9" \(tags: /);
  });
});
