/**
 * End to end: a build in place (`/` replaced by the stage's rootfs, RUN steps run directly) inside a
 * disposable runc container with Docker's default capabilities (no CAP_SYS_ADMIN, no user
 * namespace). The container's rootfs is a copy of the Debian fixture plus this node binary and this
 * repository's build at /opt/tsbuild; the context, output, a secret and /etc/hostname are bind
 * mounts from the host that the build must leave intact.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { lstatOrUndefined } from '../../../layers/fs-util.js';
import { debianBookwormImage } from '../../support/debian-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';
import { listTree } from './layer-fixtures.js';
import { conformanceCommandsFor, conformanceDockerfileFor } from '../../support/conformance.js';
import { treeState, withoutTimes } from '../../support/tree-state.js';
import { requires } from '../../support/requirement.js';

const run = promisify(execFile);
const runtime = await findOciRuntime();
const skip = requires(process.getuid?.() !== 0 ? 'needs root to run runc' : runtime?.name !== 'runc' ? 'needs a working runc' : false);

const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-in-place-e2e-'));
after(() => rm(work, { recursive: true, force: true }));

/** Docker's default capabilities: enough to chown and change ids, not to mount or unshare. */
const dockerCaps = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'].map((c) => `CAP_${c}`);

const dockerfile = `FROM debian
COPY greeting.txt /greeting.txt
RUN cat /greeting.txt > /hello && rm /etc/issue && mkdir /data && echo data > /data/x && cat /etc/hosts > /seen-hosts && cat /etc/hostname > /seen-hostname && echo extra:x:3000:nobody >> /etc/group
USER nobody
RUN id -G > /tmp/nobody-groups && id -u >> /tmp/nobody-groups
`;

async function runContainer(bundle: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('runc', ['--root', path.join(work, 'state'), 'run', '--bundle', bundle, `tsbuild-in-place-${randomBytes(6).toString('hex')}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, output };
}

interface Bind {
  readonly source: string;
  readonly destination: string;
  readonly readonly: boolean;
}

/** A runc bundle whose rootfs is the Debian fixture plus this node binary and tsbuild at /opt/tsbuild. */
async function inPlaceBundle(name: string): Promise<{ bundle: string; rootfs: string; baseLayout: string }> {
  const base = await debianBookwormImage();
  const bundle = path.join(work, name);
  const rootfs = path.join(bundle, 'rootfs');
  await mkdir(bundle);
  await run('umoci', ['raw', 'unpack', '--image', `${base.layoutDir}:${base.tag}`, rootfs]);
  await copyFile(process.execPath, path.join(rootfs, 'usr/local/bin/node'));
  await run('chmod', ['755', path.join(rootfs, 'usr/local/bin/node')]);
  const install = path.join(rootfs, 'opt/tsbuild');
  await mkdir(install, { recursive: true });
  const sources = await Promise.all(['dist', 'node_modules', 'package.json'].map((name) => realpath(path.join(repoRoot(), name))));
  await run('cp', ['-a', '--', ...sources, install]);
  const missingLibs = (await run('chroot', [rootfs, '/usr/bin/ldd', '/usr/local/bin/node'])).stdout.split('\n').filter((line) => line.includes('not found'));
  assert.deepEqual(missingLibs, [], 'the Debian rootfs satisfies the node binary');
  return { bundle, rootfs, baseLayout: base.layoutDir };
}

/** Runs `tsbuild --isolation none` on /ctx in the bundle's container, writing /out/image, with `binds` mounted. */
async function buildInContainer(bundle: string, binds: readonly Bind[]): Promise<{ code: number | null; output: string }> {
  await run('runc', ['spec', '--bundle', bundle]);
  const configPath = path.join(bundle, 'config.json');
  const config = JSON.parse(await readFile(configPath, 'utf8')) as {
    process: { args: string[]; env: string[]; terminal: boolean; cwd: string; capabilities: Record<string, string[]> };
    root: { readonly: boolean };
    hostname: string;
    mounts: { destination: string; type: string; source: string; options: string[] }[];
  };
  config.process.terminal = false;
  config.process.cwd = '/';
  config.process.args = [
    '/usr/local/bin/node', '/opt/tsbuild/dist/cli/main.js', '--isolation', 'none', '--progress', 'plain',
    '--build-context', 'debian=oci-layout:///base:bookworm', '-t', 'in-place:1', '-o', 'type=oci,dest=/out/image',
    '--source-date-epoch', '1700000000', '--compression-level', '1', '/ctx',
  ];
  config.process.env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'container=runc'];
  config.process.capabilities = { bounding: dockerCaps, effective: dockerCaps, permitted: dockerCaps };
  config.root.readonly = false;
  config.hostname = 'container-host';
  for (const bind of binds) config.mounts.push({ destination: bind.destination, type: 'bind', source: bind.source, options: ['rbind', bind.readonly ? 'ro' : 'rw'] });
  await writeFile(configPath, JSON.stringify(config));
  return runContainer(bundle);
}

test('a Dockerfile builds in place inside an unprivileged container, leaving the mounted volumes intact', { skip, timeout: 10 * 60_000 }, async () => {
  const { bundle, baseLayout } = await inPlaceBundle('bundle');
  const context = path.join(work, 'context');
  await mkdir(path.join(context, 'sub'), { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  await writeFile(path.join(context, 'greeting.txt'), 'built in place\n');
  await writeFile(path.join(context, 'sub/untouched'), 'keep me\n');
  const output = path.join(work, 'out');
  await mkdir(output);
  const secrets = path.join(work, 'secrets');
  await mkdir(secrets);
  await writeFile(path.join(secrets, 'token'), 's3cret\n');
  const hostname = path.join(work, 'hostname');
  await writeFile(hostname, 'container-host\n');
  const contextBefore = await listTree(context);
  const secretsBefore = await listTree(secrets);

  const result = await buildInContainer(bundle, [
    { source: context, destination: '/ctx', readonly: false },
    { source: baseLayout, destination: '/base', readonly: true },
    { source: output, destination: '/out', readonly: false },
    { source: secrets, destination: '/run/secrets', readonly: true },
    { source: hostname, destination: '/etc/hostname', readonly: false },
  ]);
  assert.equal(result.code, 0, result.output);
  assert.match(result.output, /^note: isolation: none \(in place on this container's root filesystem\)$/m);
  assert.match(result.output, /^exported oci \/out\/image sha256:[0-9a-f]{64}$/m);

  // The mounted volumes are as they were; the output holds only the layout.
  assert.deepEqual(await listTree(context), contextBefore);
  assert.deepEqual(await listTree(secrets), secretsBefore);
  assert.equal(await readFile(hostname, 'utf8'), 'container-host\n');
  assert.deepEqual(await readdir(output), ['image']);
  assert.deepEqual((await readdir(path.join(output, 'image'))).sort(), ['blobs', 'index.json', 'oci-layout']);

  // The last RUN's layer holds exactly what it wrote: nothing of the protected paths or placed files.
  const layout = path.join(output, 'image');
  const blob = (digest: string): string => path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  assert.equal(manifest.layers.length, 4);
  const listed = (await run('tar', ['-tzf', blob(manifest.layers[3]!.digest)])).stdout.split('\n').filter(Boolean);
  assert.deepEqual(listed, ['tmp/', 'tmp/nobody-groups']);

  const image = await unpackWithUmoci(layout, 'in-place:1');
  try {
    const at = (p: string): string => path.join(image.rootfs, p);
    assert.equal(await readFile(at('hello'), 'utf8'), 'built in place\n');
    assert.equal(await readFile(at('data/x'), 'utf8'), 'data\n');
    assert.equal(await lstatOrUndefined(at('etc/issue')), undefined);
    assert.match(await readFile(at('seen-hosts'), 'utf8'), /localhost tsbuild/);
    // /etc/hostname is a mount of the container: the step saw the container's own file.
    assert.equal(await readFile(at('seen-hostname'), 'utf8'), 'container-host\n');
    assert.equal(await readFile(at('tmp/nobody-groups'), 'utf8'), '65534 3000\n65534\n');
    assert.match(await readFile(at('etc/group'), 'utf8'), /^extra:x:3000:nobody$/m);
    // Nothing of the builder, its workspace, the mounts or the placed files reached the image.
    for (const absent of ['opt/tsbuild', 'usr/local/bin/node', 'ctx', 'base', 'out', 'run/secrets/token', 'etc/hosts']) {
      assert.equal(await lstatOrUndefined(at(absent)), undefined, absent);
    }
    assert.deepEqual((await readdir(at('tmp'))).filter((name) => name !== 'nobody-groups'), []);
    assert.deepEqual((await readdir(image.rootfs)).filter((name) => name.startsWith('.')), []);
  } finally {
    await image.cleanup();
  }
});

test('the RUN conformance steps built in place give the tree they give in a plain chroot', { skip, timeout: 10 * 60_000 }, async () => {
  const commands = conformanceCommandsFor('/usr/bin/ls');
  const { bundle, baseLayout } = await inPlaceBundle('conformance-bundle');
  const context = path.join(work, 'conformance-context');
  const output = path.join(work, 'conformance-out');
  await mkdir(context);
  await mkdir(output);
  await writeFile(path.join(context, 'Dockerfile'), conformanceDockerfileFor('debian', commands));
  const result = await buildInContainer(bundle, [
    { source: context, destination: '/ctx', readonly: true },
    { source: baseLayout, destination: '/base', readonly: true },
    { source: output, destination: '/out', readonly: false },
  ]);
  assert.equal(result.code, 0, result.output);

  const reference = path.join(work, 'conformance-reference');
  await run('umoci', ['raw', 'unpack', '--image', `${baseLayout}:bookworm`, reference]);
  for (const command of commands) await run('unshare', ['--mount', '--fork', 'chroot', reference, '/bin/sh', '-c', command]);
  const image = await unpackWithUmoci(path.join(output, 'image'), 'in-place:1');
  try {
    const actual = withoutTimes(await treeState(image.rootfs));
    const expected = withoutTimes(await treeState(reference));
    assert.deepEqual(actual.hardlinks, expected.hardlinks);
    assert.deepEqual(actual.paths, expected.paths);
  } finally {
    await image.cleanup();
  }
});

test('stages take / in turn: each RUN sees only its own stage, and COPY --from reads a stage that lost /', { skip, timeout: 10 * 60_000 }, async () => {
  const { bundle, baseLayout } = await inPlaceBundle('multi-stage-bundle');
  const context = path.join(work, 'multi-stage-context');
  const output = path.join(work, 'multi-stage-out');
  await mkdir(context);
  await mkdir(output);
  await writeFile(
    path.join(context, 'Dockerfile'),
    `FROM debian AS builder
RUN echo compiled > /artifact && mkdir /build-only && echo x > /build-only/x
FROM debian AS runtime
RUN echo runtime > /runtime-marker
COPY --from=builder /artifact /app/artifact
RUN test ! -e /build-only && test ! -e /artifact && cat /app/artifact > /app/seen
FROM builder AS final
COPY --from=runtime /app /app
RUN test -e /build-only/x && test ! -e /runtime-marker && cat /app/seen /artifact > /final
`,
  );
  const result = await buildInContainer(bundle, [
    { source: context, destination: '/ctx', readonly: true },
    { source: baseLayout, destination: '/base', readonly: true },
    { source: output, destination: '/out', readonly: false },
  ]);
  assert.equal(result.code, 0, result.output);

  const image = await unpackWithUmoci(path.join(output, 'image'), 'in-place:1');
  try {
    const at = (p: string): string => path.join(image.rootfs, p);
    assert.equal(await readFile(at('final'), 'utf8'), 'compiled\ncompiled\n');
    assert.equal(await readFile(at('app/artifact'), 'utf8'), 'compiled\n');
    assert.equal(await readFile(at('build-only/x'), 'utf8'), 'x\n');
    assert.equal(await lstatOrUndefined(at('runtime-marker')), undefined);
  } finally {
    await image.cleanup();
  }
});
