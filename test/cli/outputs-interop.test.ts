/**
 * The outputs as other tools read them: podman load, containerd's ctr import, docker load,
 * skopeo copy and umoci, and a registry push with annotations. A tool missing here fails the test as root or in
 * CI (test/run-all.sh installs them), and skips with the reason otherwise.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { Dockerd } from '../../bench/compare/dockerd.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';
import { requiresInTest } from '../support/requirement.js';
import { skopeoInspect, validateLayout } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const example = path.join(repoRoot(), 'examples', 'static-site');
const exampleArgs = ['-f', path.join(example, 'Dockerfile'), '--progress', 'plain', example];
const isRoot = process.getuid?.() === 0;

let work: { dir: string; cleanup: () => Promise<void> };
let env: NodeJS.ProcessEnv;
/** An OCI archive of the example named app:1 and keep:2, as the tools below read it. */
let twoNames: string;
before(async () => {
  work = await tempDir('tsbuild-interop');
  env = { SOURCE_DATE_EPOCH: '1700000000', TSBUILD_CACHE_DIR: path.join(work.dir, 'cache') };
  twoNames = path.join(work.dir, 'two-names.tar');
  const result = await tsbuild(['-t', 'app:1', '-t', 'keep:2', '-o', `type=oci,dest=${twoNames}`, ...exampleArgs], env);
  assert.equal(result.code, 0, result.stderr);
});
after(async () => work.cleanup());

/** Whether `tool` can run here; else the test fails or skips, naming the package to install. */
function requireTool(t: TestContext, tool: string, debianPackage: string): boolean {
  if (existsSync(`/usr/bin/${tool}`) || existsSync(`/usr/sbin/${tool}`)) return true;
  requiresInTest(t, `${tool} is missing: install the Debian package ${debianPackage} (test/run-all.sh does as root)`);
  return false;
}

/** Whether this process is root; else the test fails or skips, saying why it needs root. */
function requireRoot(t: TestContext, why: string): boolean {
  if (isRoot) return true;
  requiresInTest(t, why);
  return false;
}

describe('podman load', () => {
  test('loads OCI archives with several names, or with an index, under each normalised name', async (t) => {
    if (!requireTool(t, 'podman', 'podman') || !requireRoot(t, 'podman with a private storage root needs root here')) return;
    const root = await mkdtemp(path.join(work.dir, 'podman-'));
    const podman = (...args: string[]) =>
      run('podman', ['--root', path.join(root, 'storage'), '--runroot', path.join(root, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none', ...args]);
    const { stdout } = await podman('load', '-i', twoNames);
    assert.match(stdout, /^Loaded image: docker\.io\/library\/app:1$/m);
    assert.match(stdout, /^Loaded image: docker\.io\/library\/keep:2$/m);
    // One name for an index over two platforms: podman picks this machine's image.
    const multi = path.join(work.dir, 'one-name-two-platforms.tar');
    assert.equal((await tsbuild(['--platform', 'linux/amd64,linux/arm64', '-t', 'solo:3', '-o', `type=oci,dest=${multi}`, ...exampleArgs], env)).code, 0);
    await podman('load', '-i', multi);
    const images = (await podman('images', '--format', '{{.Repository}}:{{.Tag}}')).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(images, ['docker.io/library/app:1', 'docker.io/library/keep:2', 'docker.io/library/solo:3']);
  });
});

/** A containerd of our own: its own root, state and socket under a temp dir, stopped by its PID. */
async function startContainerd(dir: string): Promise<{ socket: string; stop(): Promise<void> }> {
  const socket = path.join(dir, 'sock');
  const config = [
    'version = 2',
    `root = "${path.join(dir, 'root')}"`,
    `state = "${path.join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
  ].join('\n');
  await writeFile(path.join(dir, 'config.toml'), `${config}\n`);
  const child: ChildProcess = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log = (log + chunk.toString('utf8')).slice(-4000)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    if (await run('ctr', ['--address', socket, 'version']).then(() => true, () => false)) return { socket, stop };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stop();
  throw new Error(`containerd did not start:\n${log}`);
}

describe('ctr images import', () => {
  test('sees the names a buildx OCI export gives: docker.io/library/NAME:TAG', async (t) => {
    if (!requireTool(t, 'containerd', 'containerd') || !requireTool(t, 'ctr', 'containerd') || !requireRoot(t, 'a private containerd needs root')) return;
    // A short path: the socket's must fit in 108 bytes.
    const dir = await mkdtemp('/tmp/tsbuild-ctd-');
    const containerd = await startContainerd(dir);
    try {
      const ctr = (...args: string[]) => run('ctr', ['--address', containerd.socket, ...args]);
      await ctr('images', 'import', '--no-unpack', twoNames);
      const names = (await ctr('images', 'ls', '-q')).stdout.split('\n').filter(Boolean).sort();
      assert.deepEqual(names, ['docker.io/library/app:1', 'docker.io/library/keep:2']);
    } finally {
      await containerd.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docker load', () => {
  test('loads an OCI archive with several names and a docker archive, under the names buildx gives', async (t) => {
    if (!requireTool(t, 'dockerd', 'docker.io') || !requireRoot(t, 'a private dockerd needs root')) return;
    const archive = path.join(work.dir, 'site.docker.tar');
    assert.equal((await tsbuild(['-t', 'site:1', '-o', `type=docker,dest=${archive}`, ...exampleArgs], env)).code, 0);
    // Its own data root, exec root and socket, no bridge or iptables rules; stopped by its PID.
    const dockerd = await Dockerd.start(await mkdtemp('/tmp/tsbuild-dockerd-'), '127.0.0.1:1');
    try {
      for (const file of [twoNames, archive]) await dockerd.docker(['load', '-i', file]);
      const { stdout } = await dockerd.docker(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      assert.deepEqual(stdout.split('\n').filter(Boolean).sort(), ['app:1', 'keep:2', 'site:1']);
    } finally {
      await dockerd.stop();
    }
  });
});

describe('skopeo', () => {
  test('addresses an image in a layout by its tag and copies archives and layouts both ways', async () => {
    const copied = path.join(work.dir, 'copied');
    await run('skopeo', ['copy', `oci-archive:${twoNames}:2`, `oci:${copied}:copy`]);
    const archived = await skopeoInspect(`oci-archive:${twoNames}:1`);
    assert.equal((await skopeoInspect(`oci:${copied}:copy`)).Digest, archived.Digest);
    await validateLayout(copied);
    // The archive itself, unpacked, is a layout that oci-image-tool, skopeo and umoci accept.
    const unpacked = path.join(work.dir, 'two-names');
    await mkdir(unpacked);
    await run('tar', ['-xf', twoNames, '-C', unpacked]);
    await validateLayout(unpacked);
  });
});

describe('a base image in Docker format', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(async () => registry?.stop());

  test('gives an OCI layout with OCI media types only, the blobs unchanged, that umoci unpacks', async () => {
    const base = path.join(work.dir, 'busybox');
    await writeBusyboxImage(base);
    const remote = `${registry.host}/library/busybox:docker`;
    await run('skopeo', ['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${base}:latest`, `docker://${remote}`]);
    const pushed = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${remote}`])).stdout);
    assert.equal(pushed.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip', 'the base really is Docker format');

    const ctx = path.join(work.dir, 'ctx-docker-base');
    await mkdir(ctx);
    await writeFile(path.join(ctx, 'hello.txt'), 'hello\n');
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${remote}\nCOPY hello.txt /hello.txt\n`);
    const dest = path.join(work.dir, 'on-docker-base');
    const result = await tsbuild(['-t', 'b:1', '-o', `type=oci,dest=${dest}`, '--progress', 'plain', ctx], env);
    assert.equal(result.code, 0, result.stderr);
    const index = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8'));
    const manifest = JSON.parse(await readFile(path.join(dest, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
    assert.deepEqual(manifest.layers.map((l: { mediaType: string }) => l.mediaType), ['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+gzip']);
    assert.equal(manifest.layers[0].digest, pushed.layers[0].digest, 'the base layer blob is the same');
    await validateLayout(dest);
  });
});

describe('a multi-platform push with annotations', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(async () => registry?.stop());

  test('the registry holds the index and manifest annotations and the descriptor ones in the index', async () => {
    const target = `${registry.host}/team/annotated:1`;
    const result = await tsbuild(
      ['--platform', 'linux/amd64,linux/arm64', '-t', target, '--push', '--annotation', 'index:org.example.i=1', '--annotation', 'manifest,manifest-descriptor:org.example.m=2', ...exampleArgs],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    const index = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${target}`])).stdout);
    assert.deepEqual(index.annotations, { 'org.example.i': '1' });
    for (const entry of index.manifests) {
      assert.deepEqual(entry.annotations, { 'org.example.m': '2' });
      const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/team/annotated@${entry.digest}`])).stdout);
      assert.deepEqual(manifest.annotations, { 'org.example.m': '2' });
    }
  });
});
