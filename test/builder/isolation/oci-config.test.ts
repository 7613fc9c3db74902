import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { defaultCapabilities, ociConfig, type OciConfigInput, type OciRuntimeConfig } from '../../../builder/isolation/oci-config.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';

const input: OciConfigInput = {
  rootfs: '/work/rootfs',
  args: ['/bin/sh', '-c', 'echo "$1"', 'sh', 'a b'],
  env: ['PATH=/usr/bin:/bin', 'HOME=/root'],
  cwd: '/src',
  user: { uid: 0, gid: 0, additionalGids: [] },
  hostname: 'buildhost',
  network: 'default',
  binds: [
    { destination: '/etc/hosts', source: '/scratch/hosts', readonly: true },
    { destination: '/cache', source: '/scratch/cache', readonly: false },
  ],
};

function namespaces(config: OciRuntimeConfig): string[] {
  return config.linux.namespaces.map((namespace) => namespace.type).sort();
}

/** The defaults the runtime itself suggests with `runc spec`, when runc is here. */
async function runcDefaults(): Promise<{ maskedPaths: string[]; readonlyPaths: string[]; mounts: { destination: string; type: string; source: string }[] } | undefined> {
  const runtime = await findOciRuntime();
  if (runtime?.name !== 'runc') return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'oci-config-test-'));
  try {
    await promisify(execFile)(runtime.path, ['spec', '--bundle', dir]);
    const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    return { maskedPaths: spec.linux.maskedPaths, readonlyPaths: spec.linux.readonlyPaths, mounts: spec.mounts };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('ociConfig', () => {
  it('runs the given process as given, without a terminal and with a writable root', () => {
    const config = ociConfig(input, 4096);
    assert.deepEqual(config.process.args, input.args);
    assert.deepEqual(config.process.env, input.env);
    assert.equal(config.process.cwd, '/src');
    assert.equal(config.process.terminal, false);
    assert.equal(config.process.noNewPrivileges, false);
    assert.deepEqual(config.root, { path: '/work/rootfs', readonly: false });
    assert.equal(config.hostname, 'buildhost');
    assert.deepEqual(config.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }]);
  });

  it('gives root Docker’s capabilities and a non-root user none beyond the bounding set', () => {
    const root = ociConfig(input, 1024).process;
    assert.deepEqual(root.user, { uid: 0, gid: 0, additionalGids: [] });
    assert.deepEqual(root.capabilities.effective, defaultCapabilities);
    assert.deepEqual(root.capabilities.permitted, defaultCapabilities);
    assert.deepEqual(root.capabilities.inheritable, []);
    assert.ok(!root.capabilities.bounding.includes('CAP_SYS_ADMIN'));

    const app = ociConfig({ ...input, user: { uid: 1000, gid: 1000, additionalGids: [50, 29] } }, 1024).process;
    assert.deepEqual(app.user, { uid: 1000, gid: 1000, additionalGids: [50, 29] });
    assert.deepEqual(app.capabilities.bounding, defaultCapabilities);
    for (const set of [app.capabilities.effective, app.capabilities.permitted, app.capabilities.inheritable, app.capabilities.ambient]) {
      assert.deepEqual(set, []);
    }
  });

  it('makes a network namespace only for network none', () => {
    assert.deepEqual(namespaces(ociConfig({ ...input, network: 'none' }, 1024)), ['ipc', 'mount', 'network', 'pid', 'uts']);
    assert.deepEqual(namespaces(ociConfig({ ...input, network: 'default' }, 1024)), ['ipc', 'mount', 'pid', 'uts']);
    assert.deepEqual(namespaces(ociConfig({ ...input, network: 'host' }, 1024)), ['ipc', 'mount', 'pid', 'uts']);
  });

  it('mounts the system file systems first, then the binds, read-only where asked', () => {
    const mounts = ociConfig(input, 1024).mounts;
    assert.deepEqual(mounts.map((mount) => mount.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/etc/hosts', '/cache']);
    assert.ok(mounts.find((mount) => mount.destination === '/sys')?.options.includes('ro'));
    const [hosts, cache] = mounts.slice(-2);
    assert.deepEqual(hosts, { destination: '/etc/hosts', type: 'bind', source: '/scratch/hosts', options: ['rbind', 'rprivate', 'ro'] });
    assert.deepEqual(cache, { destination: '/cache', type: 'bind', source: '/scratch/cache', options: ['rbind', 'rprivate'] });
  });

  it('declares the minimal /dev nodes and allows no other device', () => {
    const linux = ociConfig(input, 1024).linux;
    assert.deepEqual(linux.devices.map((device) => `${device.path} ${device.type} ${device.major}:${device.minor}`), [
      '/dev/null c 1:3', '/dev/zero c 1:5', '/dev/full c 1:7', '/dev/random c 1:8', '/dev/urandom c 1:9', '/dev/tty c 5:0',
    ]);
    assert.deepEqual(linux.resources.devices[0], { allow: false, access: 'rwm' });
    assert.deepEqual(Object.keys(linux.resources), ['devices']);
  });

  it('masks and write-protects at least what the runtime’s own default spec does, with the same system mounts', async (t) => {
    const defaults = await runcDefaults();
    if (defaults === undefined) return t.skip('runc is not usable here');
    const config = ociConfig(input, 1024);
    for (const path of defaults.maskedPaths) assert.ok(config.linux.maskedPaths.includes(path), `masks ${path}`);
    for (const path of defaults.readonlyPaths) assert.ok(config.linux.readonlyPaths.includes(path), `makes ${path} read-only`);
    for (const mount of config.mounts.filter((m) => m.type !== 'bind')) {
      const theirs: { type: string; source: string } | undefined = defaults.mounts.find((m) => m.destination === mount.destination);
      assert.ok(theirs, `runc spec mounts ${mount.destination}`);
      assert.equal(mount.type, theirs.type);
      assert.equal(mount.source, theirs.source);
    }
  });
});
