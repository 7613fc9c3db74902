import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';
import { skopeoInspect, validateLayout } from '../support/validate-layout.js';
import { tsbuild } from './cli-harness.js';
import { requires } from '../support/requirement.js';

const run = promisify(execFile);
const canRun = process.getuid?.() === 0 && (await findOciRuntime()) !== undefined;

describe('building from and pushing to a registry', { skip: requires(canRun ? false : 'needs root and runc') }, () => {
  let work: string;
  let plain: TestRegistry;
  let secured: TestRegistry;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-registry-build-'));
    plain = await startRegistry();
    secured = await startRegistry({ auth: 'htpasswd' });
    const base = path.join(work, 'busybox');
    await writeBusyboxImage(base);
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${base}:latest`, `docker://${plain.host}/library/busybox:1`]);
    const dockerConfig = path.join(work, 'docker');
    await mkdir(dockerConfig);
    const auth = Buffer.from(`alice:${secured.users.alice}`).toString('base64');
    await writeFile(path.join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [secured.host]: { auth } } }));
    env = { SOURCE_DATE_EPOCH: '1700000000', DOCKER_CONFIG: dockerConfig, TSBUILD_CACHE_DIR: path.join(work, 'cache') };
  });

  after(async () => {
    await plain?.stop();
    await secured?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function context(name: string, dockerfile: string): Promise<string> {
    const dir = path.join(work, name);
    await mkdir(dir);
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    return dir;
  }

  test('FROM a registry image, RUN, and --push with credentials; skopeo reads back the same digest', async () => {
    const ctx = await context('push', `FROM ${plain.host}/library/busybox:1\nRUN echo pushed > /marker\n`);
    const digestFile = path.join(work, 'digest');
    const metadataFile = path.join(work, 'metadata.json');
    const target = `${secured.host}/team/app:1`;
    const result = await tsbuild(['-t', target, '--push', '--progress', 'plain', '--digest-file', digestFile, '--metadata-file', metadataFile, ctx], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^pull .* done /m);
    assert.match(result.stderr, new RegExp(`^exported registry ${target.replace(/[.]/g, '\\.')}`, 'm'));
    const digest = await readFile(digestFile, 'utf8');
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', `alice:${secured.users.alice}`, `docker://${target}`]);
    assert.equal(JSON.parse(stdout).Digest, digest);
    const metadata = JSON.parse(await readFile(metadataFile, 'utf8'));
    assert.equal(metadata['containerimage.digest'], digest);
    assert.equal(metadata['image.name'], target);
  });

  test('pushing to the registry the base came from mounts its layers instead of uploading them', async () => {
    const ctx = await context('mount', `FROM ${plain.host}/library/busybox:1\nRUN echo mounted > /marker\n`);
    const result = await tsbuild(['-t', `${plain.host}/team/mounted:1`, '--push', '--progress', 'plain', ctx], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`^push ${plain.host.replace(/[.]/g, '\\.')}/team/mounted \\S+ mounted `, 'm'));
  });

  test('a second build pulls nothing: the base comes from the image cache', async () => {
    const ctx = await context('cached', `FROM ${plain.host}/library/busybox:1\nRUN echo again > /marker\n`);
    const result = await tsbuild(['-o', `type=oci,dest=${path.join(work, 'cached-out')}`, '--progress', 'plain', ctx], env);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /^pull .* start /m);
  });

  test('tsbuild pull fills the cache ahead of a build', async () => {
    const result = await tsbuild(['pull', '--progress', 'plain', `${plain.host}/library/busybox:1`], { ...env, TSBUILD_CACHE_DIR: path.join(work, 'other-cache') });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^${plain.host.replace(/[.]/g, '\\.')}/library/busybox:1\tsha256:[0-9a-f]{64}$`));
    assert.match(result.stderr, /^pull .* done /m);
  });

  test('an image skopeo pushed from a layout tsbuild did not write is a usable base', async () => {
    const fixture = path.join(repoRoot(), 'test/fixtures/ggcr/layout/test_index_one_image');
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${fixture}`, `docker://${plain.host}/ggcr/one:1`]);
    const ctx = await context('foreign-base', `FROM ${plain.host}/ggcr/one:1\nCOPY hello.txt /hello.txt\n`);
    await writeFile(path.join(ctx, 'hello.txt'), 'hello\n');
    const dest = path.join(work, 'foreign-out');
    const result = await tsbuild(['-t', 'foreign:1', '-o', `type=oci,dest=${dest}`, ctx], env);
    assert.equal(result.code, 0, result.stderr);
    await validateLayout(dest);
    const base = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${plain.host}/ggcr/one:1`])).stdout);
    const built = await skopeoInspect(`oci:${dest}:foreign:1`);
    assert.deepEqual((built.Layers as string[]).slice(0, -1), base.Layers);
    assert.equal((built.Layers as string[]).length, base.Layers.length + 1);
  });

  test('registry failures are one clear line at the FROM or on push', async () => {
    const missingTag = await context('missing-tag', `FROM ${plain.host}/library/busybox:nope\n`);
    const unknown = await tsbuild(['-o', `type=oci,dest=${path.join(work, 'x')}`, missingTag], env);
    assert.equal(unknown.code, 6, 'a registry error exits 6');
    assert.match(unknown.stderr, /^error: \S*Dockerfile:1: manifest unknown: /m);

    const ctx = await context('denied', `FROM ${plain.host}/library/busybox:1\n`);
    const denied = await tsbuild(['-t', `${secured.host}/team/app:2`, '--push', ctx], { ...env, DOCKER_CONFIG: path.join(work, 'no-credentials') });
    assert.equal(denied.code, 6);
    assert.match(denied.stderr, /^error: unauthorized: /m);
    assert.equal(denied.stderr.split('\n').filter((l) => l.startsWith('error:')).length, 1);
  });
});
