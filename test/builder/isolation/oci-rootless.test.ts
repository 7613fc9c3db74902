import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import type { OciIdMapping, OciMount, OciRuntimeConfig } from '../../../builder/isolation/oci-config.js';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { treeState } from '../../support/tree-state.js';
import { ensureUser, processesOf, runAs, runAsOrRoot, unprivilegedSkipReason, type RunResult, type TestUser } from '../../support/unprivileged-user.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';
import { conformanceDockerfile } from '../../support/conformance.js';
import { requires } from '../../support/requirement.js';

const execFileAsync = promisify(execFile);
const cli = join(repoRoot(), 'dist/cli/main.js');
const hostPath = '/usr/sbin:/usr/bin:/sbin:/bin';
const epoch = '1700000000';

const runtime = process.getuid?.() === 0 ? await findOciRuntime() : undefined;
const skip = requires((await unprivilegedSkipReason()) || (runtime?.name !== 'runc' ? 'needs runc working as root' : false));

/** USER steps by name (app: 1000, groups 1000 and 50) and by uid:gid, with the ids the process sees. */
const userDockerfile = `FROM busybox
USER app
RUN id > /tmp/app-id && id -G > /tmp/app-groups && touch /tmp/app-file
USER 4242:4343
RUN id -u > /tmp/numeric-uid && id -G > /tmp/numeric-groups && touch /tmp/numeric-file
USER root
RUN id > /tmp/root-id && id -G > /tmp/root-groups
`;

/** One RUN with the host's network and one with none: the two ways /sys is set up. */
const networkDockerfile = `FROM busybox
RUN echo shared > /shared && touch /sys/probe 2>/dev/null || echo sys-read-only > /shared-sys
RUN --network=none ls /sys/class/net > /none && touch /sys/probe 2>/dev/null || echo sys-read-only > /none-sys
`;

/** The config.json of each runtime `run`, in order; see `runcWrapper`. */
async function capturedConfigs(dir: string): Promise<OciRuntimeConfig[]> {
  const names = (await readdir(dir)).sort((a, b) => Number(a.split('.')[0]) - Number(b.split('.')[0]));
  return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(dir, name), 'utf8')) as OciRuntimeConfig));
}

function mount(config: OciRuntimeConfig, destination: string): OciMount | undefined {
  return config.mounts.find((entry) => entry.destination === destination);
}

/** The identity mappings over `1 + subordinate` ids: what the namespace of a user with that many subordinate ids maps. */
function identity(subordinate: number): OciIdMapping[] {
  return [{ containerID: 0, hostID: 0, size: 1 }, ...(subordinate > 0 ? [{ containerID: 1, hostID: 1, size: subordinate }] : [])];
}

describe('--isolation oci as an unprivileged user', { skip }, () => {
  let dir: string;
  let baseLayout: string;
  let user: TestUser;
  let nosub: TestUser;
  let wrapperDir: string;
  let runs = 0;

  /**
   * A directory with its own HOME, TMPDIR, build context holding `dockerfile`, and capture dir for
   * the runtime wrapper, all owned by `who` (root when undefined).
   */
  async function userDirs(who: TestUser | undefined, dockerfile: string) {
    const root = join(dir, `build-${runs++}`);
    const paths = { root, home: join(root, 'home'), tmp: join(root, 'tmp'), context: join(root, 'context'), configs: join(root, 'configs'), out: join(root, 'out') };
    for (const path of [root, paths.home, paths.tmp, paths.context, paths.configs]) {
      await mkdir(path);
      if (who) await chown(path, who.uid, who.gid);
    }
    await writeFile(join(paths.context, 'Dockerfile'), dockerfile);
    return paths;
  }

  /** `tsbuild build --isolation oci` of the context as `who` (root when undefined), with `path` first in PATH. */
  async function buildAs(who: TestUser | undefined, paths: Awaited<ReturnType<typeof userDirs>>, path = hostPath): Promise<RunResult> {
    const args = [
      cli, 'build', '--no-cache', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${baseLayout}:latest`,
      '--output', `type=oci,dest=${paths.out}`, '-t', 't:1', '--source-date-epoch', epoch, '--compression-level', '1', paths.context,
    ];
    const env = { HOME: paths.home, TMPDIR: paths.tmp, PATH: path };
    return runAsOrRoot(who, process.execPath, args, env, paths.root);
  }

  /**
   * A `runc` for PATH that copies the bundle's config.json of every `run` into the `configs`
   * directory beside the build's TMPDIR (the bundle is TMPDIR/<workspace>/<step>/bundle), then
   * execs the real runc.
   */
  async function runcWrapper(): Promise<string> {
    const bin = join(dir, 'wrapper-bin');
    await mkdir(bin);
    const script = `#!/bin/sh
if [ "$1" = --root ]; then
  prev=
  for arg do
    if [ "$prev" = --bundle ]; then cp "$arg/config.json" "$(dirname "$(dirname "$(dirname "$arg")")")/../configs/$(date +%s%N).json"; fi
    prev=$arg
  done
fi
exec ${runtime!.path} "$@"
`;
    await writeFile(join(bin, 'runc'), script, { mode: 0o755 });
    return bin;
  }

  /** Checks nothing of a build is left: no workspace, no mounts, no processes of `who`. */
  async function assertNothingLeft(who: TestUser, paths: Awaited<ReturnType<typeof userDirs>>): Promise<void> {
    assert.deepEqual(await readdir(paths.tmp), [], 'the workspace is removed');
    assert.deepEqual(await mountsUnder(dir), [], 'nothing stays mounted');
    assert.deepEqual(await processesOf(who.uid, who.subuids), [], 'nothing stays running');
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-oci-rootless-'));
    await chmod(dir, 0o755);
    baseLayout = join(dir, 'base');
    await writeBusyboxImage(baseLayout);
    user = await ensureUser('tsbuild-oci', true);
    nosub = await ensureUser('tsbuild-oci-nosub', false);
    wrapperDir = await runcWrapper();
  });

  after(async () => {
    for (const point of await mountsUnder(dir)) await execFileAsync('umount', [point]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the RUN conformance commands into the same image, byte for byte, as root does', async () => {
    const asRoot = await buildAs(undefined, await userDirs(undefined, conformanceDockerfile));
    assert.equal(asRoot.code, 0, asRoot.stderr);
    assert.match(asRoot.stderr, /^note: isolation: oci \(--isolation=oci with runc\)$/m);

    const paths = await userDirs(user, conformanceDockerfile);
    const result = await buildAs(user, paths);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`^note: isolation: oci \\(--isolation=oci with runc rootless, in a user namespace as host uid ${user.uid}, with \\d+ subordinate ids`, 'm'));
    assert.equal(result.stdout.trim(), asRoot.stdout.trim(), 'the same manifest digest as the root build');

    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 't:1');
    try {
      const tree = await treeState(rootfs);
      assert.deepEqual([tree.paths['suid']?.uid, tree.paths['suid']?.gid, tree.paths['suid']?.mode], [4242, 4343, 0o4755]);
      assert.equal(tree.paths['fifo']?.type, 'fifo');
      assert.equal(tree.paths['sparse']?.size, 1 << 30);
      for (const residue of ['proc', 'sys', 'dev', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/group', 'home']) {
        assert.equal(tree.paths[residue], undefined, `${residue} is not in the image`);
      }
    } finally {
      await cleanup();
    }
    await assertNothingLeft(user, paths);
  });

  it('runs USER steps with their uid, gid and supplementary groups', async () => {
    const asRoot = await buildAs(undefined, await userDirs(undefined, userDockerfile));
    assert.equal(asRoot.code, 0, asRoot.stderr);
    const paths = await userDirs(user, userDockerfile);
    const result = await buildAs(user, paths);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), asRoot.stdout.trim(), 'the same manifest digest as the root build');

    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 't:1');
    try {
      const read = async (name: string): Promise<string> => (await readFile(join(rootfs, 'tmp', name), 'utf8')).trim();
      // busybox id lists only the supplementary groups after groups=.
      assert.equal(await read('app-id'), 'uid=1000(app) gid=1000(app) groups=50(staff)');
      assert.equal(await read('app-groups'), '1000 50');
      assert.equal(await read('numeric-uid'), '4242');
      assert.equal(await read('numeric-groups'), '4343');
      assert.equal(await read('root-id'), 'uid=0(root) gid=0(root)');
      assert.equal(await read('root-groups'), '0');
      const tree = await treeState(rootfs);
      assert.deepEqual([tree.paths['tmp/app-file']?.uid, tree.paths['tmp/app-file']?.gid], [1000, 1000]);
      assert.deepEqual([tree.paths['tmp/numeric-file']?.uid, tree.paths['tmp/numeric-file']?.gid], [4242, 4343]);
    } finally {
      await cleanup();
    }
    await assertNothingLeft(user, paths);
  });

  it('writes a user namespace with identity mappings into config.json only when unprivileged', async () => {
    const rootPaths = await userDirs(undefined, networkDockerfile);
    const asRoot = await buildAs(undefined, rootPaths, `${wrapperDir}:${hostPath}`);
    assert.equal(asRoot.code, 0, asRoot.stderr);
    const paths = await userDirs(user, networkDockerfile);
    const result = await buildAs(user, paths, `${wrapperDir}:${hostPath}`);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), asRoot.stdout.trim(), 'the same manifest digest as the root build');

    // The probe of the runtime (in this process for root, in the namespace for the user) ran before the steps.
    const rootConfigs = (await capturedConfigs(rootPaths.configs)).filter((config) => config.hostname !== 'probe');
    const userConfigs = await capturedConfigs(paths.configs);
    assert.equal(userConfigs[0]?.hostname, 'probe', 'the runtime is probed inside the user namespace');
    const steps = userConfigs.slice(1);
    assert.equal(rootConfigs.length, 2);
    assert.equal(steps.length, 2);

    for (const config of rootConfigs) {
      assert.ok(!config.linux.namespaces.some((namespace) => namespace.type === 'user'));
      assert.equal(config.linux.uidMappings, undefined);
      assert.equal(config.linux.gidMappings, undefined);
      assert.ok(config.linux.resources?.devices.length);
      assert.equal(mount(config, '/sys')?.type, 'sysfs');
      assert.ok(mount(config, '/dev/pts')?.options.includes('gid=5'));
    }
    const subordinate = user.subuids!.count;
    for (const config of [userConfigs[0]!, ...steps]) {
      assert.ok(config.linux.namespaces.some((namespace) => namespace.type === 'user'));
      assert.deepEqual(config.linux.uidMappings, identity(subordinate));
      assert.deepEqual(config.linux.gidMappings, identity(subordinate));
      assert.equal(config.linux.resources, undefined, 'no cgroup settings');
      assert.ok(mount(config, '/dev/pts')?.options.includes('gid=5'), 'gid 5 is a subordinate id here');
    }
    const [shared, none] = steps;
    assert.deepEqual(mount(shared!, '/sys'), { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev', 'ro'] });
    assert.equal(mount(none!, '/sys')?.type, 'sysfs', 'with its own network namespace the container mounts sysfs');

    // Besides the namespace, mappings and cgroups, only paths, what the process may raise and the
    // flags a bind repeats from its source's mount (none unless TMPDIR is, say, nosuid) differ.
    const sourceFlags = new Set(['nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'strictatime']);
    const comparable = (config: OciRuntimeConfig) => ({
      ...config,
      process: { ...config.process, rlimits: [] },
      root: { ...config.root, path: '' },
      mounts: config.mounts
        .filter((entry) => entry.destination !== '/sys')
        .map((entry) => (entry.type === 'bind' ? { ...entry, source: '', options: entry.options.filter((option) => !sourceFlags.has(option)) } : entry)),
      linux: { ...config.linux, namespaces: config.linux.namespaces.filter((namespace) => namespace.type !== 'user'), uidMappings: undefined, gidMappings: undefined, resources: undefined },
    });
    assert.deepEqual(steps.map(comparable), rootConfigs.map(comparable));
    assert.deepEqual(mount(none!, '/sys'), mount(rootConfigs[1]!, '/sys'));

    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 't:1');
    try {
      const read = (name: string): Promise<string> => readFile(join(rootfs, name), 'utf8');
      assert.equal(await read('shared-sys'), 'sys-read-only\n');
      assert.equal(await read('none-sys'), 'sys-read-only\n');
      assert.equal(await read('none'), 'lo\n');
    } finally {
      await cleanup();
    }
    await assertNothingLeft(user, paths);
  });

  it('in a single-id namespace maps only root and leaves gid=5 out of devpts', async () => {
    const paths = await userDirs(nosub, 'FROM busybox\nRUN id > /id && touch /sys/probe 2>/dev/null || echo sys-read-only > /sys-ro\n');
    const result = await buildAs(nosub, paths, `${wrapperDir}:${hostPath}`);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`^note: isolation: oci \\(--isolation=oci with runc rootless, in a single-id user namespace as host uid ${nosub.uid}`, 'm'));
    const configs = await capturedConfigs(paths.configs);
    assert.equal(configs.length, 2, 'the probe and the step');
    for (const config of configs) {
      assert.deepEqual(config.linux.uidMappings, identity(0));
      assert.deepEqual(config.linux.gidMappings, identity(0));
      assert.ok(!mount(config, '/dev/pts')?.options.some((option) => option.startsWith('gid=')));
    }
    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 't:1');
    try {
      assert.match(await readFile(join(rootfs, 'id'), 'utf8'), /^uid=0\(root\) gid=0\(root\)/);
      assert.equal(await readFile(join(rootfs, 'sys-ro'), 'utf8'), 'sys-read-only\n');
    } finally {
      await cleanup();
    }
    await assertNothingLeft(nosub, paths);
  });

  it('refuses a USER the single-id namespace cannot map, with a one-line error', async () => {
    const paths = await userDirs(nosub, 'FROM busybox\nUSER 1000\nRUN true\n');
    const result = await buildAs(nosub, paths);
    assert.equal(result.code, 7, 'a RUN error exits 7');
    assert.match(result.stderr, /^error: .*Dockerfile:3: cannot run as user 1000:1000: uid 1000, gid 1000, gid 50 not mapped in this user namespace \(add subordinate ids/m);
    await assertNothingLeft(nosub, paths);
  });

  it('keeps the flags the kernel locks on the mount the read-only binds come from', async () => {
    // A nosuid,nodev tmpfs as TMPDIR, as /tmp often is: remounting /etc/hosts read-only must repeat them.
    const paths = await userDirs(user, 'FROM busybox\nRUN cat /etc/hosts > /hosts && (echo x >> /etc/hosts) 2>/dev/null || echo hosts-read-only > /hosts-ro\n');
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', `nosuid,nodev,mode=0700,uid=${user.uid},gid=${user.gid}`, 'tmpfs', paths.tmp]);
    try {
      const result = await buildAs(user, paths);
      assert.equal(result.code, 0, result.stderr);
      const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 't:1');
      try {
        assert.match(await readFile(join(rootfs, 'hosts'), 'utf8'), /^127\.0\.0\.1\s+localhost/m);
        assert.equal(await readFile(join(rootfs, 'hosts-ro'), 'utf8'), 'hosts-read-only\n');
      } finally {
        await cleanup();
      }
      assert.deepEqual(await readdir(paths.tmp), []);
      assert.deepEqual(await mountsUnder(paths.tmp), [paths.tmp], 'only the test’s own tmpfs');
    } finally {
      await execFileAsync('umount', [paths.tmp]);
    }
    assert.deepEqual(await processesOf(user.uid, user.subuids), []);
  });

  it('re-executes into a user namespace for oci, while auto still chooses rootless for an unprivileged user', async () => {
    const paths = await userDirs(user, 'FROM busybox\nRUN true\n');
    const auto = await runAs(
      user, process.execPath,
      [cli, 'build', '--no-cache', '--progress', 'plain', '--build-context', `busybox=oci-layout://${baseLayout}:latest`, '--output', `type=oci,dest=${paths.out}`, paths.context],
      { HOME: paths.home, TMPDIR: paths.tmp, PATH: hostPath }, paths.root,
    );
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(auto.stderr, /^note: isolation: rootless \(/m);
    // TSBUILD_USERNS claims a namespace the process is not in: the command refuses rather than building.
    const refused = await runAs(
      user, process.execPath,
      [cli, 'build', '--no-cache', '--isolation', 'oci', '--build-context', `busybox=oci-layout://${baseLayout}:latest`, paths.context],
      { HOME: paths.home, TMPDIR: paths.tmp, PATH: hostPath, TSBUILD_USERNS: 'subordinate' }, paths.root,
    );
    assert.equal(refused.code, 7);
    assert.match(refused.stderr, /^error: TSBUILD_USERNS is set, yet this process is not uid 0 of a user namespace$/m);
  });
});
