import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, cp, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { ensureUser, unprivilegedSkipReason } from '../support/unprivileged-user.js';
import { repoRoot } from '../support/repo-root.js';
import { requires } from '../support/requirement.js';
import { skopeoInspect, validateLayout } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const cli = path.join(repoRoot(), 'dist', 'cli', 'main.js');
const epoch = { SOURCE_DATE_EPOCH: '1700000000' };
const example = path.join(repoRoot(), 'examples', 'static-site');
const exampleArgs = ['-f', path.join(example, 'Dockerfile'), '--progress', 'plain', example];

let work: { dir: string; cleanup: () => Promise<void> };
let onBusybox: string[];
before(async () => {
  work = await tempDir('tsbuild-outputs');
  const base = path.join(work.dir, 'busybox');
  await writeBusyboxImage(base);
  const ctx = path.join(work.dir, 'ctx');
  await mkdir(ctx);
  await writeFile(path.join(ctx, 'hello.txt'), 'hello\n');
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY --chmod=0600 hello.txt /etc/hello.txt\n');
  onBusybox = ['--build-context', `busybox=oci-layout://${base}`, '--progress', 'plain', ctx];
});
after(async () => work.cleanup());

/** Runs the CLI as a program (through `prefix`, e.g. setpriv, when given), with stdout kept as bytes. */
function tsbuildProgram(args: readonly string[], prefix: readonly string[] = []): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [command, ...rest] = [...prefix, process.execPath, cli, ...args] as [string, ...string[]];
    const child = spawn(command, rest, { env: { ...process.env, ...epoch }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
  });
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const tarList = async (file: string): Promise<string[]> => (await run('tar', ['-tf', file])).stdout.split('\n').filter((l) => l !== '');

describe('type=local', () => {
  test('unpacks the final filesystem: base and new files, modes, symlinks as symlinks', async () => {
    const dest = path.join(work.dir, 'rootfs');
    const result = await tsbuild(['-o', `type=local,dest=${dest}`, ...onBusybox], epoch);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(path.join(dest, 'etc/hello.txt'), 'utf8'), 'hello\n');
    assert.equal((await lstat(path.join(dest, 'etc/hello.txt'))).mode & 0o7777, 0o600);
    assert.equal(await readlink(path.join(dest, 'bin/sh')), '/bin/busybox');
    assert.deepEqual(await readFile(path.join(dest, 'bin/busybox')), await readFile('/bin/busybox'));
    assert.equal((await lstat(path.join(dest, 'tmp'))).mode & 0o7777, 0o1777);
  });

  test('an existing dest keeps other files and never writes through a symlink in it', async () => {
    const dest = path.join(work.dir, 'existing');
    const outside = path.join(work.dir, 'outside');
    await mkdir(outside);
    await mkdir(dest);
    await writeFile(path.join(dest, 'mine.txt'), 'kept\n');
    await symlink(outside, path.join(dest, 'etc'));
    const result = await tsbuild(['-o', `type=local,dest=${dest}`, ...onBusybox], epoch);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(await readFile(path.join(dest, 'mine.txt'), 'utf8'), 'kept\n');
    assert.ok((await lstat(path.join(dest, 'etc'))).isDirectory(), 'the symlink was replaced by the image directory');
    assert.deepEqual(await readdir(outside), [], 'nothing was written through the symlink');
    assert.match(await readFile(path.join(dest, 'etc/passwd'), 'utf8'), /^app:x:1000:1000:/m);
  });

  test('several platforms go to one directory per platform, as BuildKit splits them', async () => {
    const dest = path.join(work.dir, 'multi-local');
    const result = await tsbuild(['--platform', 'linux/amd64,linux/arm64', '-o', `type=local,dest=${dest}`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await readdir(dest)).sort(), ['linux_amd64', 'linux_arm64']);
    assert.equal((await lstat(dest)).mode & 0o777, 0o755);
    assert.match(await readFile(path.join(dest, 'linux_arm64/srv/www/index.html'), 'utf8'), /Built by tsbuild/);
  });
});

describe('type=tar', () => {
  test('writes the filesystem as a tar, the same bytes to a file and to stdout', async () => {
    const dest = path.join(work.dir, 'fs.tar');
    const toFile = await tsbuildProgram(['-o', `type=tar,dest=${dest}`, ...onBusybox]);
    assert.equal(toFile.code, 0, toFile.stderr);
    const names = await tarList(dest);
    assert.ok(names.includes('etc/hello.txt') && names.includes('bin/busybox') && names.includes('bin/sh'), names.join(' '));
    const { stdout: verbose } = await run('tar', ['-tvf', dest, 'etc/hello.txt', 'bin/sh']);
    assert.match(verbose, /^-rw------- 0\/0 .* etc\/hello\.txt$/m);
    assert.match(verbose, /^lrwxrwxrwx 0\/0 .* bin\/sh -> \/bin\/busybox$/m);
    const toStdout = await tsbuildProgram(['-o', 'type=tar,dest=-', ...onBusybox]);
    assert.equal(toStdout.code, 0, toStdout.stderr);
    assert.equal(sha256(toStdout.stdout), sha256(await readFile(dest)), 'stdout holds the archive and nothing else');
  });
});

describe('dest=- for an unprivileged user', { skip: requires(await unprivilegedSkipReason()) }, () => {
  test('the archive passes unchanged through the user namespace the build re-executes in', async () => {
    const user = await ensureUser('tsbuild-oci', true);
    const home = path.join(work.dir, 'unprivileged');
    await mkdir(home);
    await cp(example, path.join(home, 'ctx'), { recursive: true });
    await mkdir(path.join(home, 'out'));
    await run('chown', ['-R', `${user.uid}:${user.gid}`, home]);
    await chmod(work.dir, 0o711);
    const env = ['env', '-i', `HOME=${home}`, `TMPDIR=${home}`, `TSBUILD_CACHE_DIR=${path.join(home, 'cache')}`, `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, `SOURCE_DATE_EPOCH=${epoch.SOURCE_DATE_EPOCH}`];
    const asUser = ['setpriv', '--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', ...env];
    const file = path.join(home, 'out', 'fs.tar');
    const toFile = await tsbuildProgram(['-o', `type=tar,dest=${file}`, '--progress', 'plain', path.join(home, 'ctx')], asUser);
    assert.equal(toFile.code, 0, toFile.stderr);
    const piped = await tsbuildProgram(['-o', 'type=tar,dest=-', '--progress', 'plain', path.join(home, 'ctx')], asUser);
    assert.equal(piped.code, 0, piped.stderr);
    assert.ok(piped.stdout.length > 1024, `an archive arrived (${piped.stdout.length} bytes)`);
    assert.equal(sha256(piped.stdout), sha256(await readFile(file)));
  });
});

describe('type=oci as a tar or a directory', () => {
  test('dest ending in .tar and dest=- write an OCI archive; the digest is not printed over it', async () => {
    const dest = path.join(work.dir, 'image.tar');
    const result = await tsbuild(['-t', 'site:1', '-o', `type=oci,dest=${dest}`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual((await tarList(dest)).slice(0, 3), ['oci-layout', 'index.json', 'manifest.json']);
    const inspected = await skopeoInspect(`oci-archive:${dest}:1`);
    assert.equal(inspected.Digest, result.stdout.trim());
    const piped = await tsbuildProgram(['-t', 'site:1', '-o', 'type=oci,dest=-', ...exampleArgs]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(sha256(piped.stdout), sha256(await readFile(dest)));
  });

  test('name= replaces the -t names in a layout; type=docker writes the same archive to a file and to stdout', async () => {
    const dest = path.join(work.dir, 'renamed');
    const result = await tsbuild(['-t', 'site:1', '-o', `type=oci,dest=${dest},"name=other:2,registry.example/team/other"`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    const entries = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8')).manifests as { annotations: Record<string, string> }[];
    assert.deepEqual(entries.map((e) => e.annotations), [
      { 'io.containerd.image.name': 'docker.io/library/other:2', 'org.opencontainers.image.ref.name': '2' },
      { 'io.containerd.image.name': 'registry.example/team/other:latest', 'org.opencontainers.image.ref.name': 'latest' },
    ]);
    const archive = path.join(work.dir, 'docker.tar');
    const toFile = await tsbuildProgram(['-t', 'site:1', '-o', `type=docker,dest=${archive}`, ...exampleArgs]);
    assert.equal(toFile.code, 0, toFile.stderr);
    const piped = await tsbuildProgram(['-t', 'site:1', '-o', 'type=docker,dest=-', ...exampleArgs]);
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(sha256(piped.stdout), sha256(await readFile(archive)));
    const inspected = JSON.parse((await run('skopeo', ['inspect', '--config', `docker-archive:${archive}`])).stdout);
    assert.deepEqual(inspected.config.Entrypoint, ['/usr/bin/static-site']);
  });

  test('tar=false keeps a .tar dest a directory, an empty one becomes a layout; the layout validates', async () => {
    const dest = path.join(work.dir, 'dir.tar');
    await mkdir(dest);
    const result = await tsbuild(['-t', 'site:1', '-o', `type=oci,dest=${dest},tar=false`, ...exampleArgs], epoch);
    assert.equal(result.code, 0, result.stderr);
    await validateLayout(dest);
  });
});

describe('outputs are checked before anything is built or written', () => {
  test('type=docker with two platforms fails first, with the cause and the fix on one line', async () => {
    const oci = path.join(work.dir, 'never-oci');
    const docker = path.join(work.dir, 'never.tar');
    const result = await tsbuild(['--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${oci}`, '-o', `type=docker,dest=${docker}`, ...exampleArgs], epoch);
    assert.equal(result.code, 2, 'a usage error');
    assert.equal(result.stderr, 'error: type=docker holds one platform only, and 2 are built; use type=oci for a multi-platform image, or build one --platform');
    await assert.rejects(access(oci));
    await assert.rejects(access(docker));
  });

  test('a bad -t name fails before the build', async () => {
    const result = await tsbuild(['-t', 'Site:1', '-o', `type=local,dest=${path.join(work.dir, 'never-local')}`, ...exampleArgs], epoch);
    assert.equal(result.code, 2, 'a usage error');
    assert.match(result.stderr, /^error: invalid image name "Site:1": repository name must be lowercase; use NAME\[:TAG\]/);
    assert.doesNotMatch(result.stderr, /^#/m, 'no step ran');
  });
});

describe('--annotation', () => {
  test('lands at every level of a multi-platform layout; a platform-specific one on its manifest only', async () => {
    const dest = path.join(work.dir, 'annotated');
    const result = await tsbuild(
      [
        '--platform', 'linux/amd64,linux/arm64', '-t', 'a:1', '-o', `type=oci,dest=${dest}`,
        '--annotation', 'org.example.all=m',
        '--annotation', 'manifest[linux/arm64]:org.example.arm=yes',
        '--annotation', 'index,index-descriptor:org.example.top=i',
        '--annotation', 'manifest-descriptor:org.example.desc=d',
        ...exampleArgs,
      ],
      epoch,
    );
    assert.equal(result.code, 0, result.stderr);
    const blob = async (digest: string) => JSON.parse(await readFile(path.join(dest, 'blobs/sha256', digest.slice(7)), 'utf8'));
    const top = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8')).manifests[0];
    assert.equal(top.annotations['org.example.top'], 'i');
    const index = await blob(top.digest);
    assert.deepEqual(index.annotations, { 'org.example.top': 'i' });
    for (const entry of index.manifests) {
      assert.deepEqual(entry.annotations, { 'org.example.desc': 'd' });
      const manifest = await blob(entry.digest);
      const arm = entry.platform.architecture === 'arm64';
      assert.deepEqual(manifest.annotations, arm ? { 'org.example.all': 'm', 'org.example.arm': 'yes' } : { 'org.example.all': 'm' });
    }
    await validateLayout(dest);
  });

  test('an index annotation on a single-platform build is refused with the fix', async () => {
    const result = await tsbuild(['--annotation', 'index:k=v', '-o', `type=oci,dest=${path.join(work.dir, 'never-annotated')}`, ...exampleArgs], epoch);
    assert.equal(result.code, 2, 'a usage error');
    assert.equal(result.stderr, 'error: invalid --annotation "index:k=v": a single-platform build has no image index; use manifest: or manifest-descriptor:, or build several --platform values');
  });
});
