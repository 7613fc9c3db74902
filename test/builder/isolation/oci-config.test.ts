import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { defaultCapabilities, identityMappings, mapsId, ociConfig, type OciConfigInput, type OciRuntimeConfig, type OciUserNamespace } from '../../../builder/isolation/oci-config.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { requiresInTest } from '../../support/requirement.js';

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
    assert.deepEqual(linux.resources?.devices[0], { allow: false, access: 'rwm' });
    assert.deepEqual(Object.keys(linux.resources ?? {}), ['devices']);
  });

  it('masks and write-protects at least what the runtime’s own default spec does, with the same system mounts', async (t) => {
    const defaults = await runcDefaults();
    if (defaults === undefined) return requiresInTest(t, 'runc is not usable here');
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

/** What a namespace with subordinate ids maps (uid_map text as the kernel writes it). */
const subordinateMap = '         0        999          1\n         1     100000      65536\n';
const subordinate: OciUserNamespace = { uidMappings: identityMappings(subordinateMap), gidMappings: identityMappings(subordinateMap) };
const singleId: OciUserNamespace = { uidMappings: identityMappings('0 1000 1\n'), gidMappings: identityMappings('0 1000 1\n') };

function mountAt(config: OciRuntimeConfig, destination: string) {
  return config.mounts.find((mount) => mount.destination === destination);
}

describe('ociConfig in a user namespace', () => {
  it('maps every id of the current namespace to itself', () => {
    assert.deepEqual(identityMappings(subordinateMap), [{ containerID: 0, hostID: 0, size: 1 }, { containerID: 1, hostID: 1, size: 65536 }]);
    assert.deepEqual(identityMappings('  5 200 10\n0 999 1\n\n'), [{ containerID: 0, hostID: 0, size: 1 }, { containerID: 5, hostID: 5, size: 10 }]);
    assert.deepEqual(identityMappings(''), []);
    assert.ok(mapsId(subordinate.uidMappings, 65536));
    assert.ok(!mapsId(subordinate.uidMappings, 65537));
    assert.ok(!mapsId(singleId.gidMappings, 5));
  });

  it('adds a user namespace with the mappings and leaves cgroups alone', () => {
    const config = ociConfig(input, 1024, subordinate);
    assert.deepEqual(namespaces(config), ['ipc', 'mount', 'pid', 'user', 'uts']);
    assert.deepEqual(config.linux.uidMappings, subordinate.uidMappings);
    assert.deepEqual(config.linux.gidMappings, subordinate.gidMappings);
    assert.equal(config.linux.resources, undefined);
    assert.deepEqual(namespaces(ociConfig({ ...input, network: 'none' }, 1024, subordinate)), ['ipc', 'mount', 'network', 'pid', 'user', 'uts']);
  });

  it('has no user namespace, no mappings and the device rules as root', () => {
    const config = ociConfig(input, 1024);
    assert.ok(!('uidMappings' in config.linux));
    assert.ok(!('gidMappings' in config.linux));
    assert.ok(config.linux.resources !== undefined);
    assert.equal(mountAt(config, '/sys')?.type, 'sysfs');
    assert.ok(mountAt(config, '/dev/pts')?.options.includes('gid=5'));
  });

  it('binds the host /sys read-only unless the container has its own network namespace', () => {
    assert.deepEqual(mountAt(ociConfig(input, 1024, subordinate), '/sys'), {
      destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'ro'],
    });
    assert.deepEqual(mountAt(ociConfig({ ...input, network: 'host' }, 1024, subordinate), '/sys')?.type, 'bind');
    assert.deepEqual(mountAt(ociConfig({ ...input, network: 'none' }, 1024, subordinate), '/sys'), mountAt(ociConfig(input, 1024), '/sys'));
  });

  it('gives devpts gid 5 only when gid 5 is mapped', () => {
    assert.ok(mountAt(ociConfig(input, 1024, subordinate), '/dev/pts')?.options.includes('gid=5'));
    const options = mountAt(ociConfig(input, 1024, singleId), '/dev/pts')?.options ?? [];
    assert.ok(!options.some((option) => option.startsWith('gid=')));
    assert.ok(options.includes('newinstance'));
  });

  it('repeats the flags a bind must keep before making it read-only', () => {
    const config = ociConfig({ ...input, binds: [{ destination: '/etc/hosts', source: '/scratch/hosts', readonly: true, flags: ['nosuid', 'nodev'] }] }, 1024, subordinate);
    assert.deepEqual(mountAt(config, '/etc/hosts')?.options, ['rbind', 'rprivate', 'nosuid', 'nodev', 'ro']);
  });

  it('mounts /sys with the options of the runtime’s own rootless spec', async (t) => {
    const runtime = await findOciRuntime();
    if (runtime?.name !== 'runc') return requiresInTest(t, 'runc is not usable here');
    const dir = await mkdtemp(join(tmpdir(), 'oci-config-test-'));
    try {
      await promisify(execFile)(runtime.path, ['spec', '--rootless', '--bundle', dir]);
      const spec = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { mounts: { destination: string; source: string; options: string[] }[]; linux: Record<string, unknown> };
      const theirs = spec.mounts.find((mount) => mount.destination === '/sys');
      const ours = mountAt(ociConfig(input, 1024, subordinate), '/sys');
      assert.equal(ours?.source, theirs?.source);
      for (const option of theirs?.options ?? []) assert.ok(ours?.options.includes(option), `/sys has ${option}`);
      const theirPts = spec.mounts.find((mount) => mount.destination === '/dev/pts')?.options ?? [];
      assert.deepEqual(mountAt(ociConfig(input, 1024, singleId), '/dev/pts')?.options, theirPts);
      assert.equal(spec.linux.resources, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
