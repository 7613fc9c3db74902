import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { buildForTest, type TestBuildOptions } from '../../support/build-for-test.js';
import type { BuildEvent } from '../../../builder/progress.js';
import type { IsolationMode } from '../../../builder/isolation/backend.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { rootlessAvailable } from '../../../builder/isolation/rootless.js';
import { mountsUnder } from '../../../builder/host/mountinfo.js';
import { tryLockFile } from '../../../layers/layout-lock.js';
import { ChrootBackend, chrootAvailable } from '../../../builder/isolation/chroot.js';
import { StageRun } from '../../../builder/exec/stage-run.js';
import { Workspace } from '../../../builder/workspace/workspace.js';
import type { PlannedStage } from '../../../builder/model/plan.js';
import { runStepEntries } from '../../../builder/run/run-step.js';
import { runStep } from '../cache/copy-fixture.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';
import { buildAsUser, ensureUser } from '../../support/unprivileged-user.js';
import { requires } from '../../support/requirement.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let work: string;
let baseLayout: string;
let counter = 0;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-run-mount-'));
  baseLayout = path.join(work, 'busybox');
  await writeBusyboxImage(baseLayout);
  // Cache mounts live under the tsbuild cache directory: a private one for this file.
  process.env.TSBUILD_CACHE_DIR = path.join(work, 'tsbuild-cache');
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function availableBackends(): Promise<IsolationMode[]> {
  if (!isRoot) return [];
  const modes: IsolationMode[] = [];
  if (await findOciRuntime()) modes.push('oci');
  if (await chrootAvailable()) modes.push('chroot');
  if (await rootlessAvailable()) modes.push('rootless');
  return modes;
}

const backends = await availableBackends();
const skip = requires(backends.length === 0 ? 'needs root and an isolation backend' : false);
/** The backend of the tests that check one behaviour rather than every backend. */
const oneBackend = backends.includes('chroot') ? 'chroot' : backends[0];

/** A build context with these files (paths may have directories). */
async function context(files: Record<string, string>): Promise<string> {
  const dir = path.join(work, `context-${++counter}`);
  await mkdir(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), text);
  }
  return dir;
}

interface Built {
  readonly layout: string;
  /** Whether each keyed step was cached, in order. */
  readonly cached: boolean[];
}

/** Builds `dir` FROM the busybox fixture into a new layout tagged `t:1`. */
async function buildContext(dir: string, extra: Partial<TestBuildOptions> = {}): Promise<Built> {
  const layout = path.join(work, `image-${++counter}`);
  const cached: boolean[] = [];
  await buildForTest({
    context: dir,
    tags: ['t:1'],
    outputs: [{ type: 'oci', dest: layout, tar: false }],
    buildContexts: [`busybox=oci-layout://${baseLayout}`],
    compressionLevel: 1,
    isolation: oneBackend!,
    cacheDir: path.join(work, 'build-cache'),
    progress: (event: BuildEvent) => {
      if (event.kind === 'step-cache') cached.push(event.cached);
    },
    ...extra,
  });
  return { layout, cached };
}

/** The image's files as the paths and contents umoci unpacks. */
async function imageFiles(layout: string): Promise<{ paths: Set<string>; read: (file: string) => Promise<string> }> {
  const { rootfs, cleanup } = await unpackWithUmoci(layout, 't:1');
  try {
    const paths = new Set<string>();
    const contents = new Map<string, string>();
    const walk = async (rel: string): Promise<void> => {
      for (const entry of await readdir(path.join(rootfs, rel), { withFileTypes: true })) {
        const sub = rel === '' ? entry.name : `${rel}/${entry.name}`;
        paths.add(sub);
        if (entry.isDirectory()) await walk(sub);
        else if (entry.isFile() && !sub.startsWith('bin/')) contents.set(sub, await readFile(path.join(rootfs, sub), 'utf8'));
      }
    };
    await walk('');
    return {
      paths,
      read: async (file) => {
        const text = contents.get(file);
        if (text === undefined) throw new Error(`${file} is not in the image`);
        return text;
      },
    };
  } finally {
    await cleanup();
  }
}

/** The decompressed tar of every layer of the image, oldest first. */
async function layerTars(layout: string): Promise<Buffer[]> {
  const blob = (digest: string): Promise<Buffer> => readFile(path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse((await blob(index.manifests[0].digest)).toString('utf8'));
  return Promise.all(manifest.layers.map(async (layer: { digest: string }) => gunzipSync(await blob(layer.digest))));
}

/** The paths in one layer tar. */
async function layerPaths(tar: Buffer): Promise<string[]> {
  const file = path.join(work, `layer-${++counter}.tar`);
  await writeFile(file, tar);
  const { stdout } = await run('tar', ['-tf', file]);
  return stdout.split('\n').filter((line) => line !== '').map((line) => line.replace(/\/$/, ''));
}

describe('RUN --mount, every backend', { skip }, () => {
  const secretValue = 'not-for-the-image-4711';

  for (const mode of backends) {
    test(`--isolation=${mode}: tmpfs, cache, bind and secret mounts work and leave nothing in the image`, async () => {
      const dir = await context({
        Dockerfile: [
          'FROM busybox',
          'RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && cat /scratch/t > /tmpfs-seen',
          `RUN --mount=type=cache,target=/var/cache/app,id=every-${mode} date +%s%N >> /var/cache/app/log && wc -l < /var/cache/app/log > /cache-lines`,
          'RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data/file > /bind-seen && if touch /mnt/data/new 2>/dev/null; then echo writable; else echo read-only; fi > /bind-ro',
          'RUN --mount=type=bind,source=data,target=/mnt/data,rw echo changed > /mnt/data/file && cat /mnt/data/file > /bind-rw-seen',
          'RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /secret-size',
          'RUN --mount=type=secret,id=token,env=TOKEN,target=/etc/token.txt test "$TOKEN" = "$(cat /etc/token.txt)" && echo same > /secret-env',
          '',
        ].join('\n'),
        'data/file': 'from the context\n',
      });
      const secretFile = path.join(work, `secret-${mode}`);
      await writeFile(secretFile, secretValue);
      const tmpDir = await mkdtemp(path.join(work, 'tmp-'));
      const first = await buildContext(dir, { isolation: mode, noCache: true, secrets: [`id=token,src=${secretFile}`], tmpDir });
      const files = await imageFiles(first.layout);
      assert.equal(await files.read('tmpfs-seen'), 'temp\n');
      assert.equal((await files.read('cache-lines')).trim(), '1');
      assert.equal(await files.read('bind-seen'), 'from the context\n');
      assert.equal(await files.read('bind-ro'), 'read-only\n');
      assert.equal(await files.read('bind-rw-seen'), 'changed\n');
      assert.equal(await readFile(path.join(dir, 'data/file'), 'utf8'), 'from the context\n', 'rw writes are discarded');
      assert.equal((await files.read('secret-size')).trim(), String(secretValue.length));
      assert.equal(await files.read('secret-env'), 'same\n');
      for (const residue of ['scratch', 'var', 'mnt', 'run', 'etc/token.txt']) assert.ok(!files.paths.has(residue), `${residue} must not be in the image`);
      for (const tar of await layerTars(first.layout)) assert.ok(!tar.includes(secretValue), 'the secret is in no layer');
      assert.deepEqual(await mountsUnder(tmpDir), []);
      assert.deepEqual(await readdir(tmpDir), [], 'the scratch space is removed');

      const second = await buildContext(dir, { isolation: mode, noCache: true, secrets: [`id=token,src=${secretFile}`] });
      assert.equal((await (await imageFiles(second.layout)).read('cache-lines')).trim(), '2', 'the cache kept what the first build wrote');
    });
  }
});

describe('RUN --mount', { skip }, () => {
  test('a cache mount is not part of the cache key and its content is not in the layer', async () => {
    const dir = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=key-test echo run >> /c/log && cat /c/log > /seen\n' });
    const first = await buildContext(dir);
    assert.deepEqual(first.cached, [false]);
    const second = await buildContext(dir);
    assert.deepEqual(second.cached, [true], 'the changed cache content does not change the key');
    const tars = await layerTars(first.layout);
    assert.deepEqual((await layerPaths(tars.at(-1)!)).filter((p) => p !== '.' && p !== './'), ['seen']);
    const changed = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=key-test,sharing=locked echo run >> /c/log && cat /c/log > /seen\n' });
    assert.deepEqual((await buildContext(changed)).cached, [false], 'mount options are part of the key');
  });

  test('a cache mount is created with its mode and owner, and locked sharing works', async () => {
    const dir = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=owned,mode=0750,uid=1000,gid=50,sharing=locked stat -c "%a %u %g" /c > /owner\n' });
    const built = await buildContext(dir, { noCache: true });
    assert.equal(await (await imageFiles(built.layout)).read('owner'), '750 1000 50\n');
    const cacheRoot = path.join(process.env.TSBUILD_CACHE_DIR!, 'run-cache');
    assert.deepEqual((await readdir(cacheRoot)).filter((name) => name.endsWith('.lock')), [], 'the lock is released');
  });

  test('a private cache in use gets a fresh directory of its own; once free, it is the cache itself', async () => {
    const dir = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=private-test,sharing=private cat /c/mark > /seen 2>/dev/null; echo mark > /c/mark\n' });
    await buildContext(dir, { noCache: true });
    const lock = path.join(process.env.TSBUILD_CACHE_DIR!, 'run-cache', `${createHash('sha256').update('private-test').digest('hex')}.lock`);
    const release = await tryLockFile(lock);
    assert.ok(release, 'the cache is free between builds');
    try {
      const busy = await buildContext(dir, { noCache: true });
      assert.equal(await (await imageFiles(busy.layout)).read('seen'), '', 'another user holds it: a fresh directory');
    } finally {
      await release();
    }
    const free = await buildContext(dir, { noCache: true });
    assert.equal(await (await imageFiles(free.layout)).read('seen'), 'mark\n');
  });

  test('a bind mount from the context changes the key when its content changes, and honours .dockerignore', async () => {
    const dir = await context({
      Dockerfile: 'FROM busybox\nRUN --mount=target=/src,source=app ls /src > /listing && cat /src/main.txt > /main\n',
      '.dockerignore': 'app/ignored.txt\n',
      'app/main.txt': 'v1\n',
      'app/ignored.txt': 'hidden\n',
      'other.txt': 'unrelated\n',
    });
    const first = await buildContext(dir);
    assert.deepEqual(first.cached, [false]);
    const files = await imageFiles(first.layout);
    assert.equal(await files.read('listing'), 'main.txt\n');
    assert.equal(await files.read('main'), 'v1\n');
    await writeFile(path.join(dir, 'other.txt'), 'changed\n');
    await writeFile(path.join(dir, 'app/ignored.txt'), 'changed\n');
    assert.deepEqual((await buildContext(dir)).cached, [true], 'files the mount does not show do not matter');
    await writeFile(path.join(dir, 'app/main.txt'), 'v2\n');
    const changed = await buildContext(dir);
    assert.deepEqual(changed.cached, [false]);
    assert.equal(await (await imageFiles(changed.layout)).read('main'), 'v2\n');
  });

  test('a bind mount reads another stage (which is built for it), an image or a named context', async () => {
    const dir = await context({
      Dockerfile: [
        'FROM busybox AS builder',
        'RUN mkdir /out && echo built > /out/artifact',
        'FROM busybox',
        'WORKDIR /work',
        'RUN --mount=type=bind,from=builder,source=/out,target=mnt cat mnt/artifact > /from-stage',
        'RUN --mount=type=bind,from=0,source=/out/artifact,target=/one-file cat /one-file > /from-index',
        'RUN --mount=from=busybox,source=/etc/group,target=/g head -n 1 /g > /from-image',
        'RUN --mount=from=data,target=/d cat /d/named.txt > /from-named',
        '',
      ].join('\n'),
    });
    const named = await context({ 'named.txt': 'named context\n' });
    const built = await buildContext(dir, { noCache: true, buildContexts: [`busybox=oci-layout://${baseLayout}`, `data=${named}`] });
    const files = await imageFiles(built.layout);
    assert.equal(await files.read('from-stage'), 'built\n');
    assert.equal(await files.read('from-index'), 'built\n');
    assert.equal(await files.read('from-image'), 'root:x:0:\n');
    assert.equal(await files.read('from-named'), 'named context\n');
    assert.ok(!files.paths.has('work/mnt'), 'a relative target is under WORKDIR and stays out of the image');
    assert.ok(!files.paths.has('one-file'));
    assert.ok(!files.paths.has('out'));
  });

  test('a new cache mount starts with the files of its from and source; an existing one keeps its own', async () => {
    const dockerfile = (text: string): string =>
      [
        'FROM busybox AS seeder',
        `RUN mkdir /seed && echo ${text} > /seed/file`,
        'FROM busybox',
        'RUN --mount=type=cache,id=seeded,target=/c,from=seeder,source=/seed cat /c/file > /first && echo added > /c/added',
        '',
      ].join('\n');
    const dir = await context({ Dockerfile: dockerfile('seeded') });
    const first = await imageFiles((await buildContext(dir, { noCache: true })).layout);
    assert.equal(await first.read('first'), 'seeded\n');
    assert.ok(!first.paths.has('c'));
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile('changed'));
    const second = await buildContext(dir);
    assert.deepEqual(second.cached, [false, false], 'a new seed changes the key');
    assert.equal(await (await imageFiles(second.layout)).read('first'), 'seeded\n', 'the cache already existed');
  });

  test('a mount over an existing directory hides it for the run only; a new directory the run writes into is kept', async () => {
    const dir = await context({
      Dockerfile: 'FROM busybox\nRUN --mount=type=tmpfs,target=/home ls /home > /during && touch /home/x\nRUN --mount=type=tmpfs,target=/made/mnt echo kept > /made/kept\n',
    });
    const built = await buildContext(dir, { noCache: true });
    const files = await imageFiles(built.layout);
    assert.equal(await files.read('during'), '');
    assert.ok(files.paths.has('home/app'), 'the original content is still there');
    assert.ok(!files.paths.has('home/x'));
    const tars = await layerTars(built.layout);
    assert.ok(!(await layerPaths(tars.at(-2)!)).some((p) => p.startsWith('home')), 'the mounted directory is not in the layer');
    assert.equal(await files.read('made/kept'), 'kept\n');
    assert.ok(!files.paths.has('made/mnt'));
  });

  test('secrets: a missing required one fails, a missing optional one is skipped, and their content is not in the key', async () => {
    const optional = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=absent if [ -e /run/secrets/absent ]; then echo there; else echo absent; fi > /state\n' });
    assert.equal(await (await imageFiles((await buildContext(optional, { noCache: true })).layout)).read('state'), 'absent\n');
    const required = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=absent,required true\n' });
    await assert.rejects(buildContext(required, { noCache: true }), /\/Dockerfile:2: secret "absent" is required but the build was not given it/);

    const keyed = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=env-secret,env=VALUE test -n "$VALUE" && echo ok > /ok\n' });
    process.env.TSBUILD_TEST_SECRET = 'first';
    assert.deepEqual((await buildContext(keyed, { secrets: ['id=env-secret,env=TSBUILD_TEST_SECRET'] })).cached, [false]);
    process.env.TSBUILD_TEST_SECRET = 'second';
    assert.deepEqual((await buildContext(keyed, { secrets: ['id=env-secret,env=TSBUILD_TEST_SECRET'] })).cached, [true]);
    delete process.env.TSBUILD_TEST_SECRET;
  });

  const refusals: [string, string, RegExp][] = [
    ['a source outside the context', 'RUN --mount=source=../outside,target=/x true', /\/Dockerfile:2: forbidden path outside the build context: \.\.\/outside$/],
    ['an unknown option', 'RUN --mount=type=bind,target=/x,bogus=1 true', /\/Dockerfile:2: --mount=type=bind,target=\/x,bogus=1: unknown option "bogus" for type=bind$/],
    ['a missing target', 'RUN --mount=type=cache,id=x true', /\/Dockerfile:2: --mount=type=cache,id=x: target is required$/],
    ['an unknown type', 'RUN --mount=type=volume,target=/x true', /\/Dockerfile:2: --mount=type=volume,target=\/x: unknown mount type "volume"/],
    ['a bad sharing mode', 'RUN --mount=type=cache,target=/x,sharing=all true', /\/Dockerfile:2: --mount=type=cache,target=\/x,sharing=all: invalid sharing "all"/],
    ['a bad mode', 'RUN --mount=type=cache,target=/x,mode=999 true', /\/Dockerfile:2: --mount=type=cache,target=\/x,mode=999: invalid mode "999"$/],
    ['a cache source without from', 'RUN --mount=type=cache,target=/x,source=/y true', /\/Dockerfile:2: --mount=type=cache,target=\/x,source=\/y: source needs from for type=cache/],
    ['a tmpfs size', 'RUN --mount=type=tmpfs,target=/x,size=10m true', /\/Dockerfile:2: --mount=type=tmpfs,target=\/x,size=10m: option "size" is not supported/],
    ['a required ssh agent the build was not given', 'RUN --mount=type=ssh,required true', /\/Dockerfile:2: ssh agent "default" is required but the build was not given it/],
    ['two mounts at one target', 'RUN --mount=type=tmpfs,target=/x --mount=type=cache,target=/x true', /\/Dockerfile:2: two mounts at \/x$/],
    ['an unknown stage index', 'RUN --mount=from=3,target=/x true', /\/Dockerfile:2: --from=3: no earlier stage has index 3$/],
  ];
  for (const [what, instruction, message] of refusals) {
    test(`refuses ${what} with the Dockerfile line`, async () => {
      const dir = await context({ Dockerfile: `FROM busybox\n${instruction}\n`, 'file.txt': 'x\n' });
      const tmpDir = await mkdtemp(path.join(work, 'tmp-'));
      await assert.rejects(buildContext(dir, { noCache: true, tmpDir }), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
      assert.deepEqual(await readdir(tmpDir), []);
    });
  }

  test('--isolation=none refuses RUN --mount before any work', async () => {
    const dir = await context({ Dockerfile: 'FROM busybox\nRUN true\nRUN --mount=type=tmpfs,target=/x true\n' });
    const layout = path.join(work, 'none-image');
    // Without forceInPlace: were the refusal missing, the build would stop outside a container instead of replacing /.
    await assert.rejects(
      buildForTest({ context: dir, outputs: [{ type: 'oci', dest: layout, tar: false }], buildContexts: [`busybox=oci-layout://${baseLayout}`], isolation: 'none' }),
      (err: Error) => {
        assert.match(err.message, /\/Dockerfile:3: RUN --mount is not supported with --isolation=none, which cannot mount anything$/);
        return true;
      },
    );
    await assert.rejects(access(layout));
  });

  test('a bad --secret value is refused', async () => {
    const dir = await context({ Dockerfile: 'FROM busybox\nRUN true\n' });
    await assert.rejects(buildContext(dir, { secrets: ['id=x'] }), /invalid --secret id=x: src is required/);
    await assert.rejects(buildContext(dir, { secrets: ['id=x,src=/nonexistent/secret'] }), /secret "x": cannot read \/nonexistent\/secret: ENOENT/);
  });
});

test('on a copied rootfs (no overlay), an existing mount target keeps its content and stays out of the diff', { skip: requires(backends.includes('chroot') ? false : 'needs the chroot backend') }, async () => {
  const { rootfs, cleanup } = await unpackWithUmoci(baseLayout, 'latest');
  const workspace = await Workspace.create(work);
  try {
    const step = runStep('Dockerfile', 2, {
      args: ['/bin/sh', '-c', 'test ! -e /home/app && touch /home/x && echo done > /done'],
      workdir: '/',
      mounts: [{ type: 'tmpfs', target: '/home' }],
    });
    const stage = { index: 0, steps: [step] } as unknown as PlannedStage;
    const run = new StageRun(stage, [], [], async () => ({ dir: rootfs, release: async () => {} }), { kind: 'scratch' });
    const entries = await runStepEntries(step, run, {
      backend: new ChrootBackend(),
      workspace,
      output: () => {},
      mounts: { cacheDir: path.join(work, 'copied-run-cache'), secrets: new Map(), sshAgents: new Map(), bindSources: [] },
    });
    assert.deepEqual(entries.map((e) => e.path).sort(), ['done']);
    assert.deepEqual(await readdir(path.join(rootfs, 'home')), ['app'], 'writes under the mount never reach the rootfs');
  } finally {
    await workspace.remove();
    await cleanup();
  }
});

test('rootless as an unprivileged user: bind, cache and tmpfs mounts work through the CLI', { skip: requires(isRoot && backends.includes('rootless') ? false : 'needs root to create the test user') }, async () => {
  const user = await ensureUser('tsbuild-run', true);
  const dockerfile = [
    'FROM busybox',
    'RUN --mount=target=/src --mount=type=tmpfs,target=/tmp/t --mount=type=cache,target=/c,uid=1000 cat /src/input > /tmp/t/x && cat /tmp/t/x > /seen && stat -c %u /c > /cache-owner',
    '',
  ].join('\n');
  const { dest, result } = await buildAsUser(user, path.join(work, 'unprivileged'), { Dockerfile: dockerfile, input: 'unprivileged\n' }, [`busybox=oci-layout://${baseLayout}`]);
  assert.equal(result.code, 0, result.stderr);
  const files = await imageFiles(dest);
  assert.equal(await files.read('seen'), 'unprivileged\n');
  assert.equal(await files.read('cache-owner'), '1000\n');
  assert.ok(!files.paths.has('src') && !files.paths.has('c') && !files.paths.has('tmp/t'));
});

test('run-cache directories are named by the SHA-256 of their id', { skip }, async () => {
  const dir = await context({ Dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/c,id=named echo x > /c/file\n' });
  await buildContext(dir, { noCache: true });
  const hashed = createHash('sha256').update('named').digest('hex');
  assert.equal(await readFile(path.join(process.env.TSBUILD_CACHE_DIR!, 'run-cache', hashed, 'file'), 'utf8'), 'x\n');
  assert.ok((await stat(path.join(process.env.TSBUILD_CACHE_DIR!, 'run-cache', hashed))).isDirectory());
});
