import assert from 'node:assert/strict';
import { chmod, chown, copyFile, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { ensureUser, processesOf, runAs, runAsOrRoot, unprivilegedSkipReason, type RunResult, type TestUser } from '../../support/unprivileged-user.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { requires } from '../../support/requirement.js';

const cli = join(repoRoot(), 'dist/cli/main.js');
const hostPath = '/usr/sbin:/usr/bin:/sbin:/bin';
const epoch = '1700000000';

const skip = requires(await unprivilegedSkipReason());

/** RUN steps whose results depend on true ownership: a file given to nobody, a USER's files and groups, a root file. */
const ownershipDockerfile = `FROM base
RUN touch /owned-by-nobody && chown 65534:65534 /owned-by-nobody
RUN mkdir /srv && chown 1000:50 /srv
USER app
RUN mkdir /home/app/made && echo hi > /home/app/made/file && id -G > /home/app/made/groups && touch /srv/by-app
USER root
RUN echo root > /root-file
`;

/** Every path under `dir` that is not owned by `uid`. */
async function notOwnedBy(dir: string, uid: number, prefix = ''): Promise<string[]> {
  const wrong: string[] = [];
  for (const name of await readdir(join(dir, prefix))) {
    const path = join(prefix, name);
    const stats = await lstat(join(dir, path));
    if (stats.uid !== uid) wrong.push(`${path} (${stats.uid})`);
    if (stats.isDirectory()) wrong.push(...(await notOwnedBy(dir, uid, path)));
  }
  return wrong;
}

async function ownerOf(path: string): Promise<string> {
  const stats = await lstat(path);
  return `${stats.uid}:${stats.gid}`;
}

describe('--isolation rootless', { skip }, () => {
  let dir: string;
  let baseLayout: string;
  let user: TestUser;
  let nosub: TestUser;

  /** A directory for `who` with its own HOME, TMPDIR and build context holding `dockerfile`. */
  async function userDirs(who: TestUser | undefined, name: string, dockerfile: string) {
    const root = join(dir, name);
    const paths = { root, home: join(root, 'home'), tmp: join(root, 'tmp'), context: join(root, 'context'), out: join(root, 'out') };
    for (const path of [root, paths.home, paths.tmp, paths.context]) await mkdir(path);
    await writeFile(join(paths.context, 'Dockerfile'), dockerfile);
    await copyFile('/bin/busybox', join(paths.context, 'busybox'));
    if (who) for (const path of [root, paths.home, paths.tmp, paths.context, join(paths.context, 'Dockerfile'), join(paths.context, 'busybox')]) await chown(path, who.uid, who.gid);
    return paths;
  }

  /** `tsbuild build` of the directory's context into its `out` layout, as `who` (root when undefined). */
  async function buildAs(who: TestUser | undefined, paths: Awaited<ReturnType<typeof userDirs>>, extra: string[] = []): Promise<RunResult> {
    const args = [cli, 'build', '--no-cache', '--progress', 'plain', '--build-context', `base=oci-layout://${baseLayout}:latest`, '--output', `type=oci,dest=${paths.out}`, '-t', 'test:1', '--source-date-epoch', epoch, ...extra, paths.context];
    const env = { HOME: paths.home, TMPDIR: paths.tmp, PATH: hostPath };
    return runAsOrRoot(who, process.execPath, args, env, paths.root);
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-rootless-'));
    await chmod(dir, 0o755);
    baseLayout = join(dir, 'base');
    await writeBusyboxImage(baseLayout);
    user = await ensureUser('tsbuild-test', true);
    nosub = await ensureUser('tsbuild-test-nosub', false);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('builds as an unprivileged user with true ownership, byte for byte as root does', async () => {
    assert.ok(user.subuids, 'the set-up gives tsbuild-test subordinate ids');
    const reference = await userDirs(undefined, 'as-root', ownershipDockerfile);
    const asRoot = await buildAs(undefined, reference);
    assert.equal(asRoot.code, 0, asRoot.stderr);

    const paths = await userDirs(user, 'as-user', ownershipDockerfile);
    const result = await buildAs(user, paths);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`^note: isolation: rootless \\(in a user namespace as host uid ${user.uid}, with \\d+ subordinate ids`, 'm'));
    assert.doesNotMatch(result.stderr, /^warning:/m);
    assert.equal(result.stdout.trim(), asRoot.stdout.trim(), 'the same manifest digest as the root build');

    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 'test:1');
    try {
      assert.equal(await ownerOf(join(rootfs, 'owned-by-nobody')), '65534:65534');
      assert.equal(await ownerOf(join(rootfs, 'srv')), '1000:50');
      assert.equal(await ownerOf(join(rootfs, 'srv/by-app')), '1000:1000');
      assert.equal(await ownerOf(join(rootfs, 'home/app/made')), '1000:1000');
      assert.equal(await ownerOf(join(rootfs, 'home/app/made/file')), '1000:1000');
      assert.equal((await readFile(join(rootfs, 'home/app/made/groups'), 'utf8')).trim(), '1000 50');
      assert.equal(await ownerOf(join(rootfs, 'root-file')), '0:0');
    } finally {
      await cleanup();
    }

    // On the host: outputs and the cache directory belong to the user; the cached base keeps its
    // owners as the user's subordinate ids (app, uid 1000, is the range's 1000th id).
    assert.deepEqual(await notOwnedBy(paths.out, user.uid), []);
    const cacheRoot = join(paths.home, '.cache/tsbuild');
    assert.equal((await lstat(cacheRoot)).uid, user.uid);
    const [chain] = await readdir(join(cacheRoot, 'rootfs/sha256'));
    assert.ok(chain);
    assert.equal(await ownerOf(join(cacheRoot, 'rootfs/sha256', chain, 'home/app')), `${user.subuids.start + 999}:${user.subuids.start + 999}`);

    // Nothing left: no workspace, no mounts, no processes of the user or its subordinate ids.
    assert.deepEqual(await readdir(paths.tmp), []);
    assert.deepEqual(await mountsUnder(dir), []);
    assert.deepEqual(await processesOf(user.uid, user.subuids), []);
  });

  it('stores into the default local store owned by the user', async () => {
    const paths = await userDirs(user, 'store', 'FROM base\nRUN echo stored > /stored\n');
    const env = { HOME: paths.home, TMPDIR: paths.tmp, PATH: hostPath };
    const built = await runAs(user, process.execPath, [cli, 'build', '--no-cache', '-q', '--build-context', `base=oci-layout://${baseLayout}:latest`, '-t', 'stored:1', paths.context], env, paths.root);
    assert.equal(built.code, 0, built.stderr);
    const listed = await runAs(user, process.execPath, [cli, 'images'], env, paths.root);
    assert.match(listed.stdout, /^stored:1\tsha256:[0-9a-f]{64}$/m);
    const store = join(paths.home, '.local/share/tsbuild/store');
    assert.deepEqual(await notOwnedBy(store, user.uid), []);
  });

  it('falls back to a single-id namespace with a warning when the user has no subordinate ids', async () => {
    assert.equal(nosub.subuids, undefined, 'tsbuild-test-nosub must have no range in /etc/subuid');
    const dockerfile = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /data && echo hi > /data/f && if /bin/busybox chown 65534 /data/f; then echo chowned; else echo refused; fi"]
`;
    const paths = await userDirs(nosub, 'single', dockerfile);
    const result = await buildAs(nosub, paths);
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    assert.deepEqual(warnings, [`warning: no subordinate ids for user ${nosub.name} in /etc/subuid and /etc/subgid: only root is mapped, so files cannot be owned by other users and RUN steps cannot switch USER`]);
    assert.match(result.stderr, new RegExp(`^note: isolation: rootless \\(in a single-id user namespace as host uid ${nosub.uid}`, 'm'));
    assert.match(result.stderr, /^#2 refused$/m);
    const { rootfs, cleanup } = await unpackWithUmoci(paths.out, 'test:1');
    try {
      assert.equal(await ownerOf(join(rootfs, 'data')), '0:0');
      assert.equal(await readFile(join(rootfs, 'data/f'), 'utf8'), 'hi\n');
    } finally {
      await cleanup();
    }
    assert.deepEqual(await notOwnedBy(paths.out, nosub.uid), []);
    assert.deepEqual(await readdir(paths.tmp), []);
    assert.deepEqual(await processesOf(nosub.uid), []);
  });

  it('refuses USER other than root in a single-id namespace with a one-line error', async () => {
    const paths = await userDirs(nosub, 'single-user', 'FROM scratch\nCOPY busybox /bin/busybox\nUSER 1000\nRUN ["/bin/busybox", "true"]\n');
    const result = await buildAs(nosub, paths);
    assert.equal(result.code, 7);
    assert.match(result.stderr, /^error: .*Dockerfile:4: cannot run as user 1000:0: only root is mapped in this user namespace/m);
    assert.deepEqual(await readdir(paths.tmp), []);
  });

  it('as root, gives the same image as the default backend', async () => {
    const reference = await userDirs(undefined, 'root-auto', ownershipDockerfile);
    const auto = await buildAs(undefined, reference);
    assert.equal(auto.code, 0, auto.stderr);
    const paths = await userDirs(undefined, 'root-rootless', ownershipDockerfile);
    const result = await buildAs(undefined, paths, ['--isolation', 'rootless']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^note: isolation: rootless \(--isolation=rootless as root\)$/m);
    assert.equal(result.stdout.trim(), auto.stdout.trim());
  });

  it('removes base directories in RUN steps as an unprivileged user', async () => {
    const paths = await userDirs(user, 'remove-dir', 'FROM base\nRUN rm -rf /home && mkdir /home && touch /home/new\n');
    const result = await buildAs(user, paths);
    assert.equal(result.code, 0, result.stderr);
  });
});
