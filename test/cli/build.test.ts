import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { access, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../support/repo-root.js';
import { skopeoInspect, unpackWithUmoci, validateLayout } from '../support/validate-layout.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const example = path.join(repoRoot(), 'examples', 'static-site');
const exampleArgs = ['-f', path.join(example, 'Dockerfile'), '--progress', 'plain', example];
const epoch = { SOURCE_DATE_EPOCH: '1700000000' };

let work: { dir: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('tsbuild-cli');
});
after(async () => work.cleanup());

async function readIndex(dir: string): Promise<{ manifests: { digest: string; annotations?: Record<string, string> }[] }> {
  return JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8'));
}

describe('building the example into an OCI layout', () => {
  test('the layout validates with the image-spec schemas, oci-image-tool, umoci and skopeo', async () => {
    const dest = path.join(work.dir, 'example');
    const result = await tsbuild(['-t', 'static-site:1', '--output', `type=oci,dest=${dest}`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    await validateLayout(dest);
    const inspected = await skopeoInspect(`oci:${dest}:1`);
    assert.deepEqual(inspected.Labels, { 'org.opencontainers.image.title': 'static-site', 'org.opencontainers.image.version': '1.0' });
    const { rootfs, cleanup } = await unpackWithUmoci(dest, '1');
    try {
      assert.match(await readFile(path.join(rootfs, 'srv/www/index.html'), 'utf8'), /Built by tsbuild/);
      assert.equal(await readFile(path.join(rootfs, 'etc/static-site/server.conf'), 'utf8'), 'listen = 8080\nindex = index.html\n');
      await assert.rejects(access(path.join(rootfs, 'srv/www/Dockerfile')));
    } finally {
      await cleanup();
    }
  });

  test('the config carries every metadata instruction and history marks empty layers', async () => {
    const dest = path.join(work.dir, 'example-config');
    assert.equal((await tsbuild(['-t', 'cfg', '-o', `type=oci,dest=${dest}`, ...exampleArgs], epoch)).code, 0);
    const index = await readIndex(dest);
    const manifest = JSON.parse(await readFile(path.join(dest, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8'));
    const config = JSON.parse(await readFile(path.join(dest, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
    assert.equal(config.created, '2023-11-14T22:13:20.000Z');
    assert.deepEqual(config.config.Entrypoint, ['/usr/bin/static-site']);
    assert.deepEqual(config.config.Cmd, ['--root', '/srv/www', '--config', '/etc/static-site/server.conf']);
    assert.equal(config.config.User, '65534:65534');
    assert.equal(config.config.WorkingDir, '/srv');
    assert.deepEqual(config.config.ExposedPorts, { '8080/tcp': {} });
    assert.ok(config.config.Env.includes('SITE_ROOT=/srv/www'));
    assert.ok(!config.config.Env.some((e: string) => e.startsWith('SITE_VERSION=')), 'ARG values stay out of Env');
    const layered = config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer);
    assert.equal(layered.length, manifest.layers.length);
    assert.equal(config.rootfs.diff_ids.length, manifest.layers.length);
  });

  test('two builds with SOURCE_DATE_EPOCH give the same image digest, byte for byte', async () => {
    const first = path.join(work.dir, 'repro-1');
    const second = path.join(work.dir, 'repro-2');
    assert.equal((await tsbuild(['--no-cache', '-t', 'r:1', '-o', `type=oci,dest=${first}`, ...exampleArgs], epoch)).code, 0);
    assert.equal((await tsbuild(['--no-cache', '-t', 'r:1', '-o', `type=oci,dest=${second}`, ...exampleArgs], epoch)).code, 0);
    assert.deepEqual(await readIndex(first), await readIndex(second));
    const blobs = (await readdir(path.join(first, 'blobs', 'sha256'))).sort();
    assert.deepEqual(blobs, (await readdir(path.join(second, 'blobs', 'sha256'))).sort());
  });

  test('a re-tag replaces the old entry and other images stay', async () => {
    const dest = path.join(work.dir, 'retag');
    assert.equal((await tsbuild(['-t', 'app:1', '-t', 'keep:1', '-o', `type=oci,dest=${dest}`, ...exampleArgs], epoch)).code, 0);
    assert.equal((await tsbuild(['-t', 'app:1', '--label', 'extra=yes', '-o', `type=oci,dest=${dest}`, ...exampleArgs], epoch)).code, 0);
    const index = await readIndex(dest);
    const names = index.manifests.map((m) => m.annotations?.['io.containerd.image.name']).sort();
    assert.deepEqual(names, ['docker.io/library/app:1', 'docker.io/library/keep:1']);
    assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), ['1', '1']);
    const byName = new Map(index.manifests.map((m) => [m.annotations?.['io.containerd.image.name'], m.digest]));
    assert.notEqual(byName.get('docker.io/library/app:1'), byName.get('docker.io/library/keep:1'));
    await validateLayout(dest);
  });

  test('two concurrent builds into one layout are both listed intact', async () => {
    const dest = path.join(work.dir, 'concurrent');
    const cli = path.join(repoRoot(), 'dist', 'cli', 'main.js');
    const build = (tag: string) =>
      new Promise<number>((resolve) => {
        const child = spawn(process.execPath, [cli, '-q', '-t', tag, '--label', `tag=${tag}`, '-o', `type=oci,dest=${dest}`, ...exampleArgs], { stdio: 'ignore' });
        child.on('exit', (code) => resolve(code ?? 1));
      });
    assert.deepEqual(await Promise.all([build('one:1'), build('two:1')]), [0, 0]);
    const names = (await readIndex(dest)).manifests.map((m) => m.annotations?.['io.containerd.image.name']).sort();
    assert.deepEqual(names, ['docker.io/library/one:1', 'docker.io/library/two:1']);
    await validateLayout(dest);
  });
});

describe('other outputs', () => {
  test('type=oci,tar=true writes an oci-archive skopeo reads', async () => {
    const dest = path.join(work.dir, 'image.oci.tar');
    assert.equal((await tsbuild(['-t', 'site:1', '-o', `type=oci,dest=${dest},tar=true`, ...exampleArgs], epoch)).code, 0);
    const { stdout } = await run('skopeo', ['inspect', `oci-archive:${dest}:1`]);
    assert.equal(JSON.parse(stdout).Architecture.length > 0, true);
  });

  test('type=docker writes a docker-archive that skopeo copies into a valid layout', async () => {
    const dest = path.join(work.dir, 'image.docker.tar');
    const layout = path.join(work.dir, 'from-docker');
    assert.equal((await tsbuild(['-t', 'site:1', '-o', `type=docker,dest=${dest}`, ...exampleArgs], epoch)).code, 0);
    await run('skopeo', ['copy', `docker-archive:${dest}`, `oci:${layout}:copied`]);
    const viaLayout = path.join(work.dir, 'direct');
    assert.equal((await tsbuild(['-t', 'site:1', '-o', `type=oci,dest=${viaLayout}`, ...exampleArgs], epoch)).code, 0);
    const copied = await skopeoInspect(`oci:${layout}:copied`);
    const direct = await skopeoInspect(`oci:${viaLayout}:1`);
    assert.deepEqual(copied.Env, direct.Env);
    const { stdout } = await run('skopeo', ['inspect', '--config', `docker-archive:${dest}`]);
    const { stdout: directConfig } = await run('skopeo', ['inspect', '--config', `oci:${viaLayout}:1`]);
    assert.deepEqual(JSON.parse(stdout).rootfs, JSON.parse(directConfig).rootfs);
  });

  test('without --output the image goes to the local store, listed by images and shown by inspect', async () => {
    const store = path.join(work.dir, 'store');
    const env = { ...epoch, TSBUILD_STORE: store };
    assert.equal((await tsbuild(['-t', 'stored:1', ...exampleArgs], env)).code, 0);
    const images = await tsbuild(['images'], env);
    assert.match(images.stdout, /^stored:1\tsha256:[0-9a-f]{64}$/m);
    const inspected = await tsbuild(['inspect', 'stored:1'], env);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.deepEqual(JSON.parse(inspected.stdout).config.config.Entrypoint, ['/usr/bin/static-site']);
    await validateLayout(store);
  });

  test('--iidfile receives the config digest and -q prints only it', async () => {
    const iid = path.join(work.dir, 'iid');
    const result = await tsbuild(['-q', '--iidfile', iid, '-o', `type=oci,dest=${path.join(work.dir, 'iid-layout')}`, ...exampleArgs], epoch);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await readFile(iid, 'utf8'), result.stdout);
  });

  test('a multi-platform build writes an index with one manifest per platform', async () => {
    const dest = path.join(work.dir, 'multi');
    const result = await tsbuild(['--platform', 'linux/amd64,linux/arm64', '-t', 'multi:1', '-o', `type=oci,dest=${dest}`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    const index = await readIndex(dest);
    assert.equal(index.manifests.length, 1);
    const inner = JSON.parse(await readFile(path.join(dest, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8'));
    assert.equal(inner.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(inner.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture), ['amd64', 'arm64']);
    await validateLayout(dest);
  });
});

describe('a base image from an OCI layout build context', () => {
  test('FROM busybox layers on top of the base, resolves --chown names from its passwd', async () => {
    const base = path.join(work.dir, 'busybox');
    await writeBusyboxImage(base, 'stable');
    const ctx = path.join(work.dir, 'ctx-busybox');
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, 'hello.txt'), 'hello\n');
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nENV APP=1\nCOPY --chown=app:staff hello.txt /home/app/\nUSER app\n');
    const dest = path.join(work.dir, 'on-busybox');
    const result = await tsbuild(['--build-context', `busybox=oci-layout://${base}:stable`, '-t', 'b:1', '-o', `type=oci,dest=${dest}`, ctx], epoch);
    assert.equal(result.code, 0, result.stderr);
    await validateLayout(dest);
    const inspected = await skopeoInspect(`oci:${dest}:1`);
    assert.equal((inspected.Layers as string[]).length, 2);
    assert.deepEqual(inspected.Env, ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'BASE_ONLY=yes', 'APP=1']);
    const { rootfs, cleanup } = await unpackWithUmoci(dest, '1');
    try {
      const { stdout } = await run('stat', ['-c', '%u:%g %a', path.join(rootfs, 'home/app/hello.txt')]);
      assert.equal(stdout.trim(), '1000:50 644');
      assert.ok((await readFile(path.join(rootfs, 'bin/busybox'))).length > 100000);
    } finally {
      await cleanup();
    }
  });
});

test('COPY --from an OCI layout build context copies out of that image', async () => {
  const base = path.join(work.dir, 'busybox-for-copy');
  await writeBusyboxImage(base);
  const ctx = path.join(work.dir, 'ctx-copy-from-image');
  await mkdir(ctx, { recursive: true });
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY --from=tools /bin/busybox /usr/bin/\nCOPY --from=tools /etc/passwd /etc/\n');
  const dest = path.join(work.dir, 'copied-from-image');
  const result = await tsbuild(['--build-context', `tools=oci-layout://${base}`, '-t', 'c:1', '-o', `type=oci,dest=${dest}`, ctx], epoch);
  assert.equal(result.code, 0, result.stderr);
  await validateLayout(dest);
  const { rootfs, cleanup } = await unpackWithUmoci(dest, '1');
  try {
    assert.deepEqual(await readFile(path.join(rootfs, 'usr/bin/busybox')), await readFile('/bin/busybox'));
    assert.match(await readFile(path.join(rootfs, 'etc/passwd'), 'utf8'), /^app:x:1000:1000:/m);
  } finally {
    await cleanup();
  }
});

describe('errors', () => {
  async function failing(dockerfile: string, files: Record<string, string> = {}, extra: string[] = []) {
    const { dir, cleanup } = await tempDir('tsbuild-err');
    try {
      await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
      for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
      const dest = path.join(dir, 'out');
      const result = await tsbuild(['-o', `type=oci,dest=${dest}`, ...extra, dir]);
      await assert.rejects(access(dest), 'no output is left behind');
      return result;
    } finally {
      await cleanup();
    }
  }

  const oneLine = (stderr: string): string => {
    const lines = stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(lines.length, 1, `one error line expected, got:\n${stderr}`);
    assert.ok(stderr.trimEnd().endsWith(lines[0]!), 'the error is the last line');
    assert.doesNotMatch(stderr, /^\s+at /m);
    return lines[0]!;
  };

  test('an unknown instruction names the file and line', async () => {
    const result = await failing('FROM scratch\nFOO bar\n');
    assert.equal(result.code, 3, 'a Dockerfile error exits 3');
    assert.match(oneLine(result.stderr), /^error: \S*Dockerfile:2: unknown instruction: FOO/);
  });

  test('a missing COPY source names the line', async () => {
    const result = await failing('FROM scratch\n\nCOPY missing.txt /\n');
    assert.equal(result.code, 4, 'a build context error exits 4');
    assert.match(oneLine(result.stderr), /^error: \S*Dockerfile:3: .*missing\.txt.* not found in build context/);
  });

  test('a malformed Dockerfile (invalid flag) names the line', async () => {
    const result = await failing('FROM scratch\nCOPY --bogus=1 a /\n', { a: 'a' });
    assert.equal(result.code, 3);
    assert.match(oneLine(result.stderr), /^error: \S*Dockerfile:2: /);
  });

  test('ADD --checksum on a local source is refused', async () => {
    const result = await failing('FROM scratch\nADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 a /\n', { a: 'a' });
    assert.equal(result.code, 3);
    assert.match(oneLine(result.stderr), /^error: \S*Dockerfile:2: checksum can't be specified for non-HTTP\(S\) sources/);
  });

  test('an unknown CLI flag is a usage error with exit code 2', async () => {
    const result = await failing('FROM scratch\n', {}, ['--no-such-flag']);
    assert.equal(result.code, 2);
    assert.match(oneLine(result.stderr), /^error: Unknown argument/);
  });

  test('a bad --output value is refused', async () => {
    const result = await tsbuild(['-o', 'type=nope,dest=x', example]);
    assert.equal(result.code, 2, 'a bad flag value is a usage error');
    assert.match(oneLine(result.stderr), /^error: invalid --output "type=nope,dest=x": unsupported output type/);
  });

  test('a missing Dockerfile is named', async () => {
    const result = await tsbuild(['-f', '/nonexistent/Dockerfile', example]);
    assert.equal(result.code, 3);
    assert.match(oneLine(result.stderr), /^error: no Dockerfile at \/nonexistent\/Dockerfile: check the path given to -f\/--file$/);
  });
});

describe('plan', () => {
  test('prints the plan as JSON without building', async () => {
    const result = await tsbuild(['plan', '-f', path.join(example, 'Dockerfile'), '--build-arg', 'SITE_VERSION=2', example]);
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout);
    const stages = plan.platforms[0].stages;
    assert.deepEqual(stages.map((s: { name?: string }) => s.name ?? null), ['assets', null]);
    assert.equal(stages[1].config.Labels['org.opencontainers.image.version'], '2');
  });
});

test('the package bin runs as a program, as npx runs it', async () => {
  const { stdout } = await run(path.join(repoRoot(), 'dist', 'cli', 'main.js'), ['--help']);
  assert.match(stdout, /tsbuild/);
});

test('--version and -V print the package version', async () => {
  const { version } = JSON.parse(await readFile(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const { stdout } = await run(path.join(repoRoot(), 'dist', 'cli', 'main.js'), [flag]);
    assert.equal(stdout, `tsbuild ${version}\n`, flag);
  }
});
