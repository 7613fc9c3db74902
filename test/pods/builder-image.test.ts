/**
 * The builder image of examples/kubernetes, built by tsbuild, then run as a pod without
 * privileges (see pod.ts) to build and push an image in place. Docker Hub is out of reach, so its
 * two bases are named with --build-context: `node:20-bookworm-slim` is the Debian test base plus
 * this machine's node at /usr/local/bin/node, and `debian:bookworm-slim` the Debian test base.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { tsbuild } from '../cli/cli-harness.js';
import { debianBookwormImage } from '../support/debian-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';
import { unpackWithUmoci } from '../support/validate-layout.js';
import { podFromImage, runPod } from './pod.js';

const run = promisify(execFile);

interface ImageConfig {
  config: { Entrypoint?: string[]; Env?: string[]; User?: string };
}

describe('the Kubernetes builder image', { timeout: 30 * 60_000 }, () => {
  let work: string;
  let registry: TestRegistry;
  let bases: string[];
  const env = (): NodeJS.ProcessEnv => ({ TSBUILD_CACHE_DIR: path.join(work, 'cache') });

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'building with RUN steps and starting runc need root');
    work = await mkdtemp(path.join(tmpdir(), 'tsbuild-builder-image-'));
    registry = await startRegistry();
    const debian = await debianBookwormImage();
    const nodeContext = path.join(work, 'node-context');
    await mkdir(nodeContext);
    await copyFile(process.execPath, path.join(nodeContext, 'node'));
    await writeFile(path.join(nodeContext, 'Dockerfile'), 'FROM debian\nCOPY --chmod=755 node /usr/local/bin/node\n');
    const nodeBase = await tsbuild(['--build-context', `debian=oci-layout://${debian.layoutDir}:${debian.tag}`, '-t', 'node-base', '-o', `type=oci,dest=${path.join(work, 'node-base')}`, nodeContext], env());
    assert.equal(nodeBase.code, 0, nodeBase.stderr);
    bases = [
      '--build-context', `node:20-bookworm-slim=oci-layout://${path.join(work, 'node-base')}:node-base`,
      '--build-context', `debian:bookworm-slim=oci-layout://${debian.layoutDir}:${debian.tag}`,
    ];
  });

  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function buildBuilder(target: string): Promise<{ layout: string; config: ImageConfig; rootfs: string[] }> {
    const layout = path.join(work, `builder-${target}`);
    const result = await tsbuild(['-f', path.join(repoRoot(), 'examples/kubernetes/Dockerfile'), '--target', target, ...bases, '-t', `builder:${target}`, '-o', `type=oci,dest=${layout}`, repoRoot()], env());
    assert.equal(result.code, 0, result.stderr);
    const { stdout } = await run('skopeo', ['inspect', '--config', `oci:${layout}:${target}`]);
    const image = await unpackWithUmoci(layout, target);
    try {
      return { layout, config: JSON.parse(stdout) as ImageConfig, rootfs: (await readdir(image.rootfs)).sort() };
    } finally {
      await image.cleanup();
    }
  }

  test('the in-place target holds only /tsbuild and /workspace, and builds and pushes a RUN build as root in a pod', async () => {
    const builder = await buildBuilder('in-place');
    assert.deepEqual(builder.rootfs, ['tsbuild', 'workspace']);
    const entrypoint = builder.config.config.Entrypoint ?? [];
    assert.deepEqual(entrypoint, ['/tsbuild/lib/ld.so', '--library-path', '/tsbuild/lib', '/tsbuild/bin/node', '--max-semi-space-size=2', '--heap-growing-percent=30', '/tsbuild/dist/cli/start.cjs']);

    const debian = await debianBookwormImage();
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${debian.layoutDir}:${debian.tag}`, `docker://${registry.host}/debian:bookworm`]);
    const context = path.join(work, 'app');
    await mkdir(context);
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${registry.host}/debian:bookworm\nRUN echo built > /built && rm /etc/issue\n`);
    const pod = await podFromImage(work, 'builder-pod', builder.layout, 'in-place');
    const result = await runPod(pod, 'root', [...entrypoint, '--progress', 'plain', '-t', `${registry.host}/app:from-builder`, '--push', '/workspace'],
      [{ source: context, destination: '/workspace', readonly: true }], { env: builder.config.config.Env ?? [] });
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^note: isolation: none \(running as root in a container that cannot make namespaces/m);
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/app:from-builder`]);
    assert.equal((JSON.parse(stdout) as { layers: unknown[] }).layers.length, 2);
    // The builder's own files stayed where they were.
    assert.deepEqual((await readdir(path.join(pod.rootfs, 'tsbuild'))).sort(), ['bin', 'cache', 'dist', 'docker', 'lib', 'node_modules', 'package.json', 'tmp']);
    assert.equal(await readFile(path.join(pod.rootfs, 'built'), 'utf8'), 'built\n');
  });

  test('the rootless target runs as uid 1000 with Debian\'s tools for the rootless backend', async () => {
    const builder = await buildBuilder('rootless');
    assert.equal(builder.config.config.User, '1000:1000');
    assert.ok(builder.rootfs.includes('usr') && builder.rootfs.includes('tsbuild'));
  });
});
