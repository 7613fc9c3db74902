import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { requires } from '../support/requirement.js';
import { unpackWithUmoci } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const cannotRun = requires(process.getuid?.() !== 0 ? 'needs root to run RUN steps under runc' : (await findOciRuntime()) === undefined ? 'needs runc (Debian package runc)' : false);

let work: { dir: string; cleanup: () => Promise<void> };
let busybox: string;
before(async () => {
  work = await tempDir('tsbuild-buildx-flags');
  busybox = path.join(work.dir, 'busybox');
  await writeBusyboxImage(busybox);
});
after(async () => work.cleanup());

async function context(name: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = path.join(work.dir, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
  for (const [file, text] of Object.entries(files)) await writeFile(path.join(dir, file), text);
  return dir;
}

const cachedCount = (stderr: string): number => (stderr.match(/^#\d+ CACHED$/gm) ?? []).length;

/** Builds `ctx` into an OCI layout and returns the text of `file` in the image. */
async function buildAndRead(ctx: string, file: string, flags: readonly string[], env: NodeJS.ProcessEnv): Promise<string> {
  const dest = path.join(work.dir, `out-${path.basename(ctx)}-${Math.random().toString(36).slice(2)}`);
  const result = await tsbuild(['--build-context', `busybox=oci-layout://${busybox}`, '-t', 'probe:1', '-o', `type=oci,dest=${dest}`, '--progress', 'plain', ...flags, ctx], env);
  assert.equal(result.code, 0, result.stderr);
  const { rootfs, cleanup } = await unpackWithUmoci(dest, 'probe:1');
  try {
    return await readFile(path.join(rootfs, file), 'utf8');
  } finally {
    await cleanup();
    await rm(dest, { recursive: true, force: true });
  }
}

describe('--network and --add-host set what RUN steps see', { skip: cannotRun }, () => {
  test('--network=none leaves a RUN step only loopback; RUN --network=host still wins', async () => {
    const env = { TSBUILD_CACHE_DIR: path.join(work.dir, 'cache-network'), SOURCE_DATE_EPOCH: '1700000000' };
    const ctx = await context('network', 'FROM busybox\nRUN cat /proc/net/dev > /default.txt\nRUN --network=host cat /proc/net/dev > /host.txt\n');
    const interfaces = (text: string): string[] => text.split('\n').slice(2).map((l) => l.trim().split(':')[0]!).filter((n) => n !== '');
    const hostInterfaces = interfaces(await readFile('/proc/net/dev', 'utf8'));
    assert.ok(hostInterfaces.length > 1, 'the host has an interface besides lo');
    assert.deepEqual(interfaces(await buildAndRead(ctx, 'default.txt', ['--network', 'none'], env)), ['lo']);
    assert.deepEqual(interfaces(await buildAndRead(ctx, 'host.txt', ['--network', 'none'], env)).sort(), [...hostInterfaces].sort());
    assert.deepEqual(interfaces(await buildAndRead(ctx, 'default.txt', ['--network', 'host'], env)).sort(), [...hostInterfaces].sort());
  });

  test('--add-host entries are in /etc/hosts and part of the cache key', async () => {
    const env = { TSBUILD_CACHE_DIR: path.join(work.dir, 'cache-hosts'), SOURCE_DATE_EPOCH: '1700000000' };
    const ctx = await context('hosts', 'FROM busybox\nRUN cat /etc/hosts > /hosts.txt\n');
    const hosts = await buildAndRead(ctx, 'hosts.txt', ['--add-host', 'db.local:10.1.2.3', '--add-host', 'v6.local:fd00::5'], env);
    assert.match(hosts, /^10\.1\.2\.3\tdb\.local$/m);
    assert.match(hosts, /^fd00::5\tv6\.local$/m);
    assert.match(hosts, /^127\.0\.0\.1\tlocalhost/m);
    const other = await buildAndRead(ctx, 'hosts.txt', ['--add-host', 'db.local:10.9.9.9'], env);
    assert.match(other, /^10\.9\.9\.9\tdb\.local$/m);
    assert.doesNotMatch(other, /10\.1\.2\.3/);
  });
});

describe('--cache-from and --cache-to', () => {
  let registry: TestRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(async () => registry?.stop());

  const dockerfile = 'FROM scratch AS builder\nCOPY a.txt /a\nCOPY b.txt /b\nFROM scratch\nCOPY --from=builder /a /a\nCOPY c.txt /c\n';
  const files = { 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n' };
  // Each build has its own local build cache (its own image cache too), unless its flags name one.
  const build = (ctx: string, cacheName: string, flags: readonly string[]) => {
    const ownCache = flags.some((f) => f.startsWith('type=local')) ? [] : ['--cache-dir', path.join(work.dir, cacheName, 'build-cache')];
    const args = ['-o', `type=oci,dest=${path.join(work.dir, `out-${cacheName}`)}`, '--progress', 'plain', '--report', 'none', ...ownCache, ...flags, ctx];
    return tsbuild(args, { TSBUILD_CACHE_DIR: path.join(work.dir, cacheName) });
  };

  test('type=local,dest= writes the build cache that type=local,src= reads', async () => {
    const ctx = await context('local-cache', dockerfile, files);
    const dir = path.join(work.dir, 'shared-local-cache');
    const first = await build(ctx, 'local-1', ['--cache-to', `type=local,dest=${dir}`]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(cachedCount(first.stderr), 0);
    const second = await build(ctx, 'local-2', ['--cache-from', `type=local,src=${dir}`]);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(cachedCount(second.stderr), 4, second.stderr);
  });

  test('type=registry: mode=max shares every step, mode=min only the final stage, --cache-from alone writes nothing', async () => {
    const ctx = await context('registry-cache', dockerfile, files);
    const max = `${registry.host}/cache/max`;
    const min = `${registry.host}/cache/min`;
    assert.equal((await build(ctx, 'reg-1', ['--cache-to', `type=registry,ref=${max},mode=max`])).code, 0);
    const fromMax = await build(ctx, 'reg-2', ['--cache-from', `type=registry,ref=${max}`]);
    assert.equal(fromMax.code, 0, fromMax.stderr);
    assert.equal(cachedCount(fromMax.stderr), 4, fromMax.stderr);

    assert.equal((await build(ctx, 'reg-3', ['--cache-to', `type=registry,ref=${min}`])).code, 0);
    const fromMin = await build(ctx, 'reg-4', ['--cache-from', `type=registry,ref=${min}`]);
    assert.equal(fromMin.code, 0, fromMin.stderr);
    // The builder stage's two COPY steps were not shared; the final stage's two were.
    assert.equal(cachedCount(fromMin.stderr), 2, fromMin.stderr);
    assert.match(fromMin.stderr, /^#\d+ \[builder 1\/2\] COPY a\.txt \/a\n#\d+ cache miss/m);

    const readOnly = `${registry.host}/cache/read-only`;
    assert.equal((await build(ctx, 'reg-5', ['--cache-from', `type=registry,ref=${readOnly}`])).code, 0);
    const tags = await run('skopeo', ['list-tags', '--tls-verify=false', `docker://${readOnly}`]).then(
      (r) => JSON.parse(r.stdout).Tags as string[],
      () => [],
    );
    assert.deepEqual(tags, []);
  });

  test('--pull resolves the base against the registry; without it the cached resolution is used', async () => {
    const own = await startRegistry();
    let running = true;
    try {
      await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${busybox}:latest`, `docker://${own.host}/library/busybox:1`]);
      const ctx = await context('pull', `FROM ${own.host}/library/busybox:1\nCOPY a.txt /a\n`, files);
      const cacheName = 'pull-cache';
      const first = await build(ctx, cacheName, []);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, /^pull .* done /m);
      await own.stop();
      running = false;
      const cached = await build(ctx, cacheName, []);
      assert.equal(cached.code, 0, cached.stderr);
      const pulled = await build(ctx, cacheName, ['--pull']);
      assert.equal(pulled.code, 6, "a registry failure");
      assert.match(pulled.stderr, /^error: \S*Dockerfile:1: .*unreachable/m);
    } finally {
      if (running) await own.stop();
    }
  });
});
