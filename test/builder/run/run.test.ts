import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { buildForTest } from '../../support/build-for-test.js';
import type { IsolationMode } from '../../../builder/isolation/backend.js';
import { chrootAvailable } from '../../../builder/isolation/chroot.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { debianBookwormImage } from '../../support/debian-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { buildAsUser, ensureUser } from '../../support/unprivileged-user.js';
import { treeState, withoutTimes, type TreeState } from '../../support/tree-state.js';
import { unpackWithUmoci, validateLayout } from '../../support/validate-layout.js';
import { conformanceCommands, conformanceDockerfile } from '../../support/conformance.js';
import { requires } from '../../support/requirement.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let work: string;
let baseLayout: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-run-'));
  baseLayout = path.join(work, 'busybox');
  await writeBusyboxImage(baseLayout);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Builds `dockerfile` FROM the busybox fixture into a new layout and returns it. */
async function buildImage(name: string, dockerfile: string, isolation: IsolationMode): Promise<string> {
  const context = path.join(work, `${name}-context`);
  await mkdir(context, { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  const dest = path.join(work, `${name}-image`);
  await buildForTest({
    context,
    tags: ['t:1'],
    outputs: [{ type: 'oci', dest, tar: false }],
    buildContexts: [`busybox=oci-layout://${baseLayout}`],
    compressionLevel: 1,
    isolation,
    noCache: true,
  });
  return dest;
}

/** The tree an image unpacks to, by umoci, independent of our own extraction. */
async function imageTree(layout: string): Promise<TreeState> {
  const { rootfs, cleanup } = await unpackWithUmoci(layout, 't:1');
  try {
    return withoutTimes(await treeState(rootfs));
  } finally {
    await cleanup();
  }
}

/** The tree the same commands give when run directly in a chroot of the unpacked base: the expected result. */
async function expectedTree(commands: readonly string[]): Promise<TreeState> {
  const { rootfs, cleanup } = await unpackWithUmoci(baseLayout, 'latest');
  try {
    for (const command of commands) await run('unshare', ['--mount', '--fork', 'chroot', rootfs, '/bin/sh', '-c', command]);
    return withoutTimes(await treeState(rootfs));
  } finally {
    await cleanup();
  }
}

const environmentDockerfile = [
  'FROM busybox',
  'ARG A=arg-value',
  'ENV B=env-value',
  'RUN echo "$A $B" > /argenv',
  'USER app',
  'WORKDIR /home/app/work',
  'RUN id -u > uid && id -G > groups && pwd > pwd && echo "$HOME" > home && echo "$0" > shell-default',
  'SHELL ["/bin/busybox", "sh", "-c"]',
  'RUN echo "$0" > shell-custom',
  '',
].join('\n');

/** The entry names of each layer of the image, in order, as tar lists them. */
async function layerListings(layout: string): Promise<string[][]> {
  const blob = (digest: string): string => path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const listings: string[][] = [];
  for (const layer of manifest.layers) listings.push((await run('tar', ['-tzf', blob(layer.digest)])).stdout.split('\n').filter(Boolean));
  return listings;
}

async function availableBackends(): Promise<IsolationMode[]> {
  if (!isRoot) return [];
  const modes: IsolationMode[] = [];
  if (await findOciRuntime()) modes.push('oci');
  if (await chrootAvailable()) modes.push('chroot');
  return modes;
}

const backends = await availableBackends();
const skip = requires(backends.length === 0 ? 'needs root and an isolation backend' : false);

describe('RUN conformance, every backend', { skip }, () => {
  let expected: TreeState;
  before(async () => {
    expected = await expectedTree(conformanceCommands);
  });

  for (const mode of backends) {
    describe(`--isolation=${mode}`, () => {
      test('the image unpacks to exactly the tree the commands produce', async () => {
        const layout = await buildImage(`conformance-${mode}`, conformanceDockerfile, mode);
        await validateLayout(layout);
        const actual = await imageTree(layout);
        assert.deepEqual(actual.hardlinks, expected.hardlinks);
        assert.deepEqual(actual.paths, expected.paths);
        assert.equal(actual.paths['sparse']?.size, 1 << 30);
        assert.equal(actual.paths['suid']?.mode, 0o4755);
        assert.equal(actual.paths['suid']?.uid, 4242);
        assert.equal(actual.paths['fifo']?.type, 'fifo');
        for (const residue of ['proc', 'sys', 'dev', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf']) {
          assert.equal(actual.paths[residue], undefined, `${residue} must not be in the image`);
        }
      });

      test('USER, WORKDIR, SHELL, ARG and ENV reach the process; ARG stays out of the config', async () => {
        const layout = await buildImage(`environment-${mode}`, environmentDockerfile, mode);
        const { rootfs, cleanup } = await unpackWithUmoci(layout, 't:1');
        try {
          const read = (p: string) => readFile(path.join(rootfs, p), 'utf8');
          assert.equal(await read('argenv'), 'arg-value env-value\n');
          assert.equal(await read('home/app/work/uid'), '1000\n');
          assert.equal(await read('home/app/work/groups'), '1000 50\n');
          assert.equal(await read('home/app/work/pwd'), '/home/app/work\n');
          assert.equal(await read('home/app/work/home'), '/home/app\n');
          assert.equal(await read('home/app/work/shell-default'), '/bin/sh\n');
          assert.equal(await read('home/app/work/shell-custom'), 'sh\n');
          const owner = await stat(path.join(rootfs, 'home/app/work/uid'));
          assert.deepEqual([owner.uid, owner.gid], [1000, 1000]);
        } finally {
          await cleanup();
        }
        const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
        const manifest = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
        const config = JSON.parse(await readFile(path.join(layout, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8'));
        assert.ok(config.config.Env.includes('B=env-value'));
        assert.ok(!config.config.Env.some((e: string) => e.startsWith('A=')));
      });

      test('consecutive RUN steps each hold exactly their own changes', async () => {
        const layout = await buildImage(`consecutive-${mode}`, 'FROM busybox\nRUN echo one > /one\nRUN echo two > /etc/two\nRUN rm /one && mkdir /d\n', mode);
        assert.deepEqual((await layerListings(layout)).slice(-3), [['one'], ['etc/', 'etc/two'], ['.wh.one', 'd/']]);
        // A step whose mount hides part of the tree from its scans, between two that do not.
        const mounted = await buildImage(`consecutive-mounts-${mode}`, 'FROM busybox\nRUN echo one > /one\nRUN --mount=type=tmpfs,target=/etc echo two > /two\nRUN echo three > /three\n', mode);
        assert.deepEqual((await layerListings(mounted)).slice(-3), [['one'], ['two'], ['three']]);
      });

      test('a failing RUN names the line, the command and the exit code, and leaves nothing behind', async () => {
        const context = path.join(work, `failing-${mode}`);
        await mkdir(context, { recursive: true });
        await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo partial > /x\nRUN echo about to fail && exit 3\n');
        const dest = path.join(work, `failing-${mode}-image`);
        const tmpDir = path.join(work, `failing-${mode}-tmp`);
        await mkdir(tmpDir);
        await assert.rejects(
          buildForTest({ context, outputs: [{ type: 'oci', dest, tar: false }], buildContexts: [`busybox=oci-layout://${baseLayout}`], isolation: mode, tmpDir }),
          (err: Error) => {
            assert.match(err.message, /Dockerfile:3: process "\/bin\/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3$/);
            return true;
          },
        );
        await assert.rejects(access(dest));
        assert.deepEqual(await mountsUnder(tmpDir), []);
        assert.deepEqual(await readdir(tmpDir), [], 'the scratch space is removed');
      });
    });
  }
});

test('a RUN step past --run-timeout is killed and fails the build', { skip: requires(backends.includes('chroot') ? false : 'needs the chroot backend') }, async () => {
  const context = path.join(work, 'timeout');
  await mkdir(context, { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN sleep 30\n');
  const started = Date.now();
  await assert.rejects(
    buildForTest({ context, outputs: [{ type: 'oci', dest: path.join(work, 'timeout-image'), tar: false }], buildContexts: [`busybox=oci-layout://${baseLayout}`], isolation: 'chroot', runTimeoutSeconds: 1 }),
    /Dockerfile:2: RUN did not finish within 1 s and was killed$/,
  );
  assert.ok(Date.now() - started < 20_000, 'killed long before the command would end');
});

describe('RUN conformance, rootless as an unprivileged user', { skip: requires(isRoot ? false : 'needs root to create the test user') }, () => {
  test('the image unpacks to exactly the tree the commands produce', async () => {
    const user = await ensureUser('tsbuild-run', true);
    const { dest, result } = await buildAsUser(user, path.join(work, 'unprivileged'), { Dockerfile: conformanceDockerfile }, [`busybox=oci-layout://${baseLayout}`]);
    assert.equal(result.code, 0, result.stderr);
    const actual = await imageTree(dest);
    const expected = await expectedTree(conformanceCommands);
    assert.deepEqual(actual.hardlinks, expected.hardlinks);
    assert.deepEqual(actual.paths, expected.paths);
  });
});

describe('RUN on a Debian base', { skip }, () => {
  test('users, the package database and ownership work as on Docker', async () => {
    const debian = await debianBookwormImage();
    const context = path.join(work, 'debian');
    await mkdir(context, { recursive: true });
    await writeFile(
      path.join(context, 'Dockerfile'),
      [
        'FROM debian',
        'RUN useradd -m builder && echo hi > /home/builder/note && chown builder: /home/builder/note',
        "RUN dpkg-query -W -f='${Package}\\n' > /packages && rm -rf /var/cache/debconf",
        '',
      ].join('\n'),
    );
    const dest = path.join(work, 'debian-image');
    await buildForTest({
      context,
      tags: ['t:1'],
      outputs: [{ type: 'oci', dest, tar: false }],
      buildContexts: [`debian=oci-layout://${debian.layoutDir}:${debian.tag}`],
      compressionLevel: 1,
      noCache: true,
    });
    await validateLayout(dest);
    const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
    try {
      const note = await stat(path.join(rootfs, 'home/builder/note'));
      assert.deepEqual([note.uid, note.gid], [1000, 1000]);
      assert.match(await readFile(path.join(rootfs, 'etc/passwd'), 'utf8'), /^builder:x:1000:1000:/m);
      assert.match(await readFile(path.join(rootfs, 'packages'), 'utf8'), /^dpkg$/m);
      await assert.rejects(access(path.join(rootfs, 'var/cache/debconf')));
      const shadow = await stat(path.join(rootfs, 'etc/shadow'));
      assert.deepEqual([shadow.uid, shadow.gid, shadow.mode & 0o7777], [0, 42, 0o640], 'useradd rewrote /etc/shadow, which keeps group shadow');
    } finally {
      await cleanup();
    }
  });

  test('the Debian example in examples/debian-app builds', async () => {
    const debian = await debianBookwormImage();
    const dest = path.join(work, 'debian-example');
    await buildForTest({
      context: path.join(repoRoot(), 'examples', 'debian-app'),
      tags: ['debian-app:1'],
      outputs: [{ type: 'oci', dest, tar: false }],
      buildContexts: [`debian:bookworm=oci-layout://${debian.layoutDir}:${debian.tag}`],
      compressionLevel: 1,
      noCache: true,
    });
    await validateLayout(dest);
    const { rootfs, cleanup } = await unpackWithUmoci(dest, 'debian-app:1');
    try {
      assert.match(await readFile(path.join(rootfs, 'opt/app/build-greeting.txt'), 'utf8'), /^hello from 12\.\d+ as root\n$/);
      assert.match(await readFile(path.join(rootfs, 'home/app/data/identity'), 'utf8'), /^uid=1000\(app\) gid=1000\(app\)/);
      const data = await stat(path.join(rootfs, 'home/app/data'));
      assert.deepEqual([data.uid, data.gid], [1000, 1000]);
    } finally {
      await cleanup();
    }
  });
});
