import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { goDurationSeconds } from '../../cli/executor.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { requires } from '../support/requirement.js';
import { unpackWithUmoci } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const cannotRun = requires(process.getuid?.() !== 0 ? 'needs root to run the RUN step under runc' : (await findOciRuntime()) === undefined ? 'needs runc (Debian package runc)' : false);

test('kaniko durations become seconds', () => {
  assert.equal(goDurationSeconds('336h0m0s'), 336 * 3600);
  assert.equal(goDurationSeconds('1h30m'), 5400);
  assert.equal(goDurationSeconds('90s'), 90);
  assert.throws(() => goDurationSeconds('two weeks'), /invalid --cache-ttl "two weeks"/);
});

describe('tsbuild executor runs a kaniko invocation', { skip: cannotRun }, () => {
  let work: { dir: string; cleanup: () => Promise<void> };
  let registry: TestRegistry;

  before(async () => {
    work = await tempDir('tsbuild-executor');
    registry = await startRegistry();
    const busybox = path.join(work.dir, 'busybox');
    await writeBusyboxImage(busybox);
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${busybox}:latest`, `docker://${registry.host}/library/busybox:1`]);
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  test('kaniko README flags: build, push, tarball, OCI layout, digest files and cache repository', async () => {
    // The workspace a kaniko Job mounts at /workspace, with a multi-stage Dockerfile.
    const workspace = path.join(work.dir, 'workspace');
    await mkdir(workspace);
    await writeFile(
      path.join(workspace, 'Dockerfile'),
      `FROM ${registry.host}/library/busybox:1 AS build\nARG VERSION\nRUN echo "version $VERSION" > /version.txt\nFROM ${registry.host}/library/busybox:1 AS final\nCOPY --from=build /version.txt /version.txt\nCOPY app.txt /app.txt\nFROM scratch AS unused\n`,
    );
    await writeFile(path.join(workspace, 'app.txt'), 'app\n');
    const destination = `${registry.host}/team/app:1`;
    const out = (name: string) => path.join(work.dir, name);
    // As in kaniko's documentation: --dockerfile relative to the context, --context dir://, --destination.
    const result = await tsbuild(
      [
        'executor',
        '--dockerfile=Dockerfile',
        `--context=dir://${workspace}`,
        `--destination=${destination}`,
        '--cache=true',
        `--cache-repo=${registry.host}/team/app/cache`,
        '--build-arg',
        'VERSION=1.2',
        '--label',
        'org.example.team=builders',
        '--target',
        'final',
        `--tar-path=${out('image.tar')}`,
        `--oci-layout-path=${out('layout')}`,
        `--digest-file=${out('digest')}`,
        `--image-name-with-digest-file=${out('name-digest')}`,
        '--insecure',
        '--skip-tls-verify',
        '--reproducible',
        '--log-format=text',
      ],
      { TSBUILD_CACHE_DIR: out('tsbuild-cache') },
    );
    assert.equal(result.code, 0, result.stderr);
    const digest = await readFile(out('digest'), 'utf8');
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await readFile(out('name-digest'), 'utf8'), `${registry.host}/team/app@${digest}\n`);

    // The pushed image, read back with skopeo.
    const pushed = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${destination}`])).stdout);
    assert.equal(pushed.Digest, digest);
    assert.equal(pushed.Labels['org.example.team'], 'builders');
    assert.equal(pushed.Created, '1970-01-01T00:00:00Z');
    const pulled = out('pulled');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${destination}`, `oci:${pulled}:app`]);
    const { rootfs, cleanup } = await unpackWithUmoci(pulled, 'app');
    try {
      assert.equal(await readFile(path.join(rootfs, 'version.txt'), 'utf8'), 'version 1.2\n');
      assert.equal(await readFile(path.join(rootfs, 'app.txt'), 'utf8'), 'app\n');
    } finally {
      await cleanup();
    }

    // --tar-path is a docker-archive tarball with the destination as its tag; --oci-layout-path a layout directory.
    assert.deepEqual(await archiveTags(out('image.tar')), [destination]);
    assert.equal(JSON.parse((await run('skopeo', ['inspect', `docker-archive:${out('image.tar')}`])).stdout).Digest !== undefined, true);
    assert.equal(existsSync(path.join(out('layout'), 'index.json')), true);
    assert.equal(existsSync(path.join(out('layout'), 'oci-layout')), true);

    // --cache=true wrote the steps to the cache repository.
    const tags = JSON.parse((await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${registry.host}/team/app/cache`])).stdout).Tags as string[];
    assert.ok(tags.length >= 3, `cache tags: ${tags.join(', ')}`);
  });

  test('a tar:// context, --no-push with --tar-path: nothing is pushed; without --cache every step runs', async () => {
    const workspace = path.join(work.dir, 'no-push');
    await mkdir(workspace);
    await writeFile(path.join(workspace, 'Dockerfile'), `FROM ${registry.host}/library/busybox:1\nCOPY Dockerfile /Dockerfile\n`);
    const tarball = path.join(work.dir, 'context.tar.gz');
    await run('tar', ['-czf', tarball, '-C', workspace, '.']);
    const destination = `${registry.host}/team/never:1`;
    const args = ['executor', '-c', `tar://${tarball}`, '-f', 'Dockerfile', '-d', destination, '--no-push', `--tar-path=${path.join(work.dir, 'no-push.tar')}`, '--log-format=text'];
    for (let i = 0; i < 2; i++) {
      const result = await tsbuild(args, { TSBUILD_CACHE_DIR: path.join(work.dir, 'no-push-cache') });
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /CACHED/);
    }
    await assert.rejects(run('skopeo', ['inspect', '--tls-verify=false', `docker://${destination}`]), /manifest unknown|name unknown|not found/i);
    assert.deepEqual(await archiveTags(path.join(work.dir, 'no-push.tar')), [destination]);
  });
});

/** The names a docker-archive tarball gives its image (docker load tags it with these). */
async function archiveTags(file: string): Promise<string[]> {
  const { stdout } = await run('tar', ['-xOf', file, 'manifest.json']);
  return (JSON.parse(stdout) as { RepoTags: string[] }[]).flatMap((entry) => entry.RepoTags);
}
