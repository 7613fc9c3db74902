/**
 * tsbuild in a simulated Kubernetes pod (see pod.ts): as root without CAP_SYS_ADMIN (kaniko's
 * mode), as uid 1000, and as uid 1000 with user namespaces allowed. Each builds `FROM debian` (the
 * Debian test base, pulled from the loopback registry) with RUN steps and pushes the result there.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { debianBookwormImage } from '../support/debian-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { tsbuild } from '../cli/cli-harness.js';
import { makePod, runPod, tsbuildArgs, type Bind, type PodSettings, type PodUser } from './pod.js';

const run = promisify(execFile);

const runDockerfile = `ARG REGISTRY
FROM \${REGISTRY}/debian:bookworm
RUN echo built > /built && mkdir /app && echo one > /app/one && rm /etc/issue
RUN echo two > /app/two && ln -s one /app/link && chmod 0750 /app
`;

const copyDockerfile = `ARG REGISTRY
FROM \${REGISTRY}/debian:bookworm
COPY greeting.txt /greeting.txt
`;

/**
 * A base with no C library at all. The user has a supplementary group, which in place needs a
 * helper process; the COPY reads a stage that lost `/`, which is unpacked again.
 */
const busyboxDockerfile = `ARG REGISTRY
FROM \${REGISTRY}/busybox:latest AS first
RUN echo first > /first
FROM \${REGISTRY}/busybox:latest
RUN echo second > /second
COPY --from=first /first /first
USER app
RUN id -G && cat /first /second
`;

/** Puts a file where the pod's tsbuild has its node binary. */
const clashDockerfile = `ARG REGISTRY
FROM \${REGISTRY}/debian:bookworm
RUN echo first > /first
COPY node /usr/local/bin/node
RUN echo second > /second
`;

/** Every failure is one line naming the cause; never a stack, an internal error or EACCES at /. */
function assertOneLineError(output: string, expected: RegExp): void {
  const errors = output.split('\n').filter((line) => line.startsWith('error: '));
  assert.equal(errors.length, 1, output);
  assert.match(errors[0]!, expected);
  assert.doesNotMatch(output, /internal error|EACCES|\n\s+at /);
}

describe('tsbuild in an unprivileged pod', { timeout: 30 * 60_000 }, () => {
  let work: string;
  let registry: TestRegistry;
  const contexts = { run: '', copy: '', busybox: '', clash: '' };

  before(async () => {
    assert.equal(process.getuid?.(), 0, 'the pod simulation needs root to start runc');
    work = await mkdtemp(path.join(tmpdir(), 'tsbuild-pods-'));
    registry = await startRegistry();
    const base = await debianBookwormImage();
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${base.layoutDir}:${base.tag}`, `docker://${registry.host}/debian:bookworm`]);
    const busybox = path.join(work, 'busybox-layout');
    await writeBusyboxImage(busybox);
    await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${busybox}:latest`, `docker://${registry.host}/busybox:latest`]);
    contexts.busybox = path.join(work, 'busybox-context');
    await mkdir(contexts.busybox);
    await writeFile(path.join(contexts.busybox, 'Dockerfile'), busyboxDockerfile);
    contexts.clash = path.join(work, 'clash-context');
    await mkdir(contexts.clash);
    await writeFile(path.join(contexts.clash, 'Dockerfile'), clashDockerfile);
    await writeFile(path.join(contexts.clash, 'node'), 'not the builder\'s node\n');
    contexts.run = path.join(work, 'run-context');
    contexts.copy = path.join(work, 'copy-context');
    await mkdir(contexts.run);
    await mkdir(contexts.copy);
    await writeFile(path.join(contexts.run, 'Dockerfile'), runDockerfile);
    await writeFile(path.join(contexts.copy, 'Dockerfile'), copyDockerfile);
    await writeFile(path.join(contexts.copy, 'greeting.txt'), 'hello from a pod\n');
  });

  after(async () => {
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Builds `context` in a fresh pod as `user`, pushing `REGISTRY/app:TAG`. */
  async function buildInPod(user: PodUser, context: string, tag: string, extra: readonly string[] = [], options: { newuidmap?: boolean } & PodSettings = {}): Promise<{ code: number | null; output: string }> {
    const pod = await makePod(work, `${tag}-pod`, options);
    const binds: Bind[] = [{ source: context, destination: '/workspace', readonly: true }];
    return runPod(pod, user, tsbuildArgs(
      '--progress', 'plain', '--build-arg', `REGISTRY=${registry.host}`, '--source-date-epoch', '1700000000',
      '-t', `${registry.host}/app:${tag}`, '--push', ...extra, '/workspace',
    ), binds, options);
  }

  async function pushedManifest(tag: string): Promise<{ layers: { digest: string }[]; config: { digest: string } }> {
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/app:${tag}`]);
    return JSON.parse(stdout) as { layers: { digest: string }[]; config: { digest: string } };
  }

  test('as root, auto builds RUN steps in place and the image equals the host build with --isolation oci', async () => {
    const result = await buildInPod('root', contexts.run, 'root-auto');
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^note: isolation: none \(running as root in a container that cannot make namespaces \(.*Operation not permitted\), so steps run in place on its root filesystem\)$/m);

    const cacheDir = await mkdtemp(path.join(work, 'host-cache-'));
    const host = await tsbuild(['--isolation', 'oci', '--progress', 'plain', '--build-arg', `REGISTRY=${registry.host}`, '--source-date-epoch', '1700000000', '-t', `${registry.host}/app:host-oci`, '--push', contexts.run], { TSBUILD_CACHE_DIR: cacheDir });
    assert.equal(host.code, 0, host.stderr);
    assert.deepEqual(await pushedManifest('root-auto'), await pushedManifest('host-oci'));
  });

  test('as root, --isolation none builds in place as auto does, the pod known by its entry point being pid 1', async () => {
    const result = await buildInPod('root', contexts.run, 'root-none', ['--isolation', 'none']);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^note: isolation: none \(in place on this container's root filesystem\)$/m);
    assert.deepEqual(await pushedManifest('root-none'), await pushedManifest('root-auto'));
  });

  test('as root, in place on a base without a C library, a user with supplementary groups runs its step and COPY --from reads a stage that lost /', async () => {
    const result = await buildInPod('root', contexts.busybox, 'root-busybox');
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^note: isolation: none /m);
    assert.match(result.output, /^#\d+ 1000 50\n#\d+ first\n#\d+ second$/m);
  });

  test('as root, in place, a layer with a file where the builder keeps its node is refused in one line', async () => {
    const result = await buildInPod('root', contexts.clash, 'root-clash');
    assert.notEqual(result.code, 0);
    assertOneLineError(result.output, /^error: workspace\/Dockerfile:4: cannot build in place: the image has \/usr\/local\/bin\/node, where this build keeps its own files \(\/usr\/local\/bin\/node\); keep tsbuild, its cache and the build's inputs and outputs elsewhere/);
  });

  test('as root, the modes that need CAP_SYS_ADMIN fail in one line that names it and --isolation=none', async () => {
    for (const mode of ['oci', 'chroot', 'rootless']) {
      const result = await buildInPod('root', contexts.run, `root-${mode}`, ['--isolation', mode]);
      assert.notEqual(result.code, 0);
      assertOneLineError(result.output, new RegExp(`^error: --isolation=${mode} cannot run RUN steps here: ${mode === 'oci' ? 'runc: .*' : 'unshare: unshare failed: Operation not permitted; '}.*CAP_SYS_ADMIN.*--isolation=none`));
    }
  });

  test('as uid 1000 without user namespaces, COPY-only builds push', async () => {
    const result = await buildInPod('uid1000', contexts.copy, 'user-copy');
    assert.equal(result.code, 0, result.output);
    assert.doesNotMatch(result.output, /^(warning|error):/m, 'no word of the user namespace it did not need');
    assert.equal((await pushedManifest('user-copy')).layers.length, 2);
  });

  test('as uid 1000 without user namespaces, a RUN build fails before any step, saying what the pod needs', async () => {
    for (const mode of ['auto', 'oci', 'rootless']) {
      const result = await buildInPod('uid1000', contexts.run, `user-run-${mode}`, ['--isolation', mode]);
      assert.notEqual(result.code, 0);
      assertOneLineError(result.output, new RegExp(`^error: --isolation=${mode} cannot run RUN steps here: this process runs as uid 1000 and cannot create a user namespace \\(.*\\)\\. RUN steps need root .* runAsUser: 0, or hostUsers: false`));
      assert.doesNotMatch(result.output, /^#\d+ \[.*RUN/m, 'no step ran');
    }
    const chroot = await buildInPod('uid1000', contexts.run, 'user-run-chroot', ['--isolation', 'chroot']);
    assertOneLineError(chroot.output, /^error: --isolation=chroot cannot run RUN steps here: it needs root, and this process is uid 1000; use --isolation=rootless/);
    const none = await buildInPod('uid1000', contexts.run, 'user-run-none', ['--isolation', 'none']);
    assertOneLineError(none.output, /^error: --isolation=none cannot run RUN steps here: building in place replaces the root filesystem and needs root, as kaniko does/);
  });

  test('as uid 1000 with user namespaces allowed and /proc unmasked, rootless RUN builds push without newuidmap', async () => {
    const result = await buildInPod('uid1000-userns', contexts.run, 'userns-auto', [], { procMount: 'Unmasked' });
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^warning: no subordinate ids for user builder in \/etc\/subuid and \/etc\/subgid: only root is mapped/m);
    assert.match(result.output, /^note: isolation: rootless \(in a single-id user namespace as host uid 1000: only root can own files\)$/m);
    assert.equal((await pushedManifest('userns-auto')).layers.length, 3);
  });

  test('as uid 1000 with user namespaces allowed, a newuidmap that refuses falls back to the single-id mapping', async () => {
    const result = await buildInPod('uid1000-userns', contexts.run, 'userns-newuidmap', ['--isolation', 'rootless'], { newuidmap: true, procMount: 'Unmasked' });
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /^warning: cannot map the subordinate ids: newuidmap: write to uid_map failed: Operation not permitted: only root is mapped/m);
    assert.equal((await pushedManifest('userns-newuidmap')).layers.length, 3);
  });

  test('as uid 1000 with user namespaces allowed but /proc masked, a RUN build fails in one line naming procMount', async () => {
    const result = await buildInPod('uid1000-userns', contexts.run, 'userns-masked');
    assert.notEqual(result.code, 0);
    assertOneLineError(result.output, /^error: --isolation=auto cannot run RUN steps here: in a user namespace, yet unshare: mount \/proc failed: Operation not permitted; the container's \/proc is masked, .*procMount: Unmasked/);
  });
});
