/**
 * After a RUN step the rootfs holds whatever the step left, symlinks to host paths included: the
 * cleanup and the snapshot must not follow them out of the rootfs.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { buildForTest } from '../support/build-for-test.js';
import type { IsolationMode } from '../../builder/isolation/backend.js';
import { chrootAvailable } from '../../builder/isolation/chroot.js';
import { placeBindFiles } from '../../builder/isolation/in-place-files.js';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { diffTrees } from '../../builder/snapshot/diff.js';
import { scanTree } from '../../builder/snapshot/scan.js';
import { TsbuildError } from '../../layers/errors.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { validateLayout } from '../support/validate-layout.js';

const run = promisify(execFile);

let work: string;
let baseLayout: string;
let counter = 0;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-post-run-'));
  baseLayout = path.join(work, 'busybox');
  await writeBusyboxImage(baseLayout);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A host directory the build must leave alone: an empty file and an empty directory where the step's mount stubs were. */
async function hostTarget(): Promise<{ dir: string; check: () => Promise<void> }> {
  const dir = path.join(work, `host-${++counter}`);
  await mkdir(path.join(dir, 'b', 't'), { recursive: true });
  await writeFile(path.join(dir, 'b', 'secret'), '');
  const times = async (): Promise<bigint[]> => Promise.all(['', 'b', 'b/t', 'b/secret'].map(async (rel) => (await stat(path.join(dir, rel), { bigint: true })).mtimeNs));
  const was = await times();
  return {
    dir,
    check: async () => {
      assert.ok(existsSync(path.join(dir, 'b', 'secret')), 'the host file survives');
      assert.ok(existsSync(path.join(dir, 'b', 't')), 'the host directory survives');
      assert.deepEqual(await times(), was, 'no host time was changed');
    },
  };
}

/** Builds a Dockerfile FROM the busybox fixture; returns the layout. */
async function buildDockerfile(mode: IsolationMode, dockerfile: string, secrets: string[] = []): Promise<string> {
  const context = path.join(work, `context-${++counter}`);
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  const layout = path.join(work, `image-${counter}`);
  await buildForTest({
    context,
    tags: ['t:1'],
    outputs: [{ type: 'oci', dest: layout, tar: false }],
    buildContexts: [`busybox=oci-layout://${baseLayout}`],
    isolation: mode,
    noCache: true,
    secrets,
    cacheDir: path.join(work, 'build-cache'),
  });
  await validateLayout(layout);
  return layout;
}

/** `tar -tv` of the image's last layer. */
async function lastLayerListing(layout: string): Promise<string> {
  const blob = (digest: string): Promise<Buffer> => readFile(path.join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
  const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8'));
  const manifest = JSON.parse((await blob(index.manifests[0].digest)).toString('utf8'));
  const file = path.join(work, `layer-${++counter}.tar`);
  await writeFile(file, gunzipSync(await blob(manifest.layers.at(-1).digest)));
  return (await run('tar', ['-tvf', file])).stdout;
}

async function assertBackend(mode: IsolationMode): Promise<void> {
  if (mode === 'oci') assert.ok(await findOciRuntime(), 'an OCI runtime (runc) is needed');
  else assert.ok(await chrootAvailable(), 'the chroot backend must be available (root, unshare)');
}

for (const mode of ['oci', 'chroot'] as IsolationMode[]) {
  test(`--isolation=${mode}: mount stubs moved away and replaced by a symlink to the host are not followed`, async () => {
    await assertBackend(mode);
    const host = await hostTarget();
    const secretFile = path.join(work, `secret-${counter}`);
    await writeFile(secretFile, 'secret-value-8841');
    const layout = await buildDockerfile(
      mode,
      `FROM busybox\nRUN --mount=type=secret,id=s,target=/zz/b/secret --mount=type=tmpfs,target=/zz/b/t mv /zz /zz2 && ln -s ${host.dir} /zz\n`,
      [`id=s,src=${secretFile}`],
    );
    await host.check();
    const listing = await lastLayerListing(layout);
    assert.match(listing, new RegExp(`^l.* zz -> ${host.dir}$`, 'm'), 'the planted symlink is the step\'s result');
    assert.doesNotMatch(listing, /secret-value/);
  });

  test(`--isolation=${mode}: a heredoc script replaced by a directory of symlinks to the host is removed in the rootfs`, async () => {
    await assertBackend(mode);
    const host = await hostTarget();
    const layout = await buildDockerfile(
      mode,
      `FROM busybox\nRUN <<EOF\n#!/bin/sh\nrm "$0" && mkdir "$0" && ln -s ${host.dir} "$0/out" && ln -s ${host.dir}/b/secret "$0/f" && touch /done\nEOF\n`,
    );
    await host.check();
    assert.match(await lastLayerListing(layout), /^-.* done$/m);
    assert.doesNotMatch(await lastLayerListing(layout), /tsbuild-heredoc/);
  });
}

test('a parent swapped for a symlink after the scan: neither contents nor attributes come from outside', async () => {
  const root = path.join(work, `snapshot-root-${++counter}`);
  const outside = path.join(work, `snapshot-outside-${counter}`);
  mkdirSync(path.join(root, 'a'), { recursive: true });
  mkdirSync(outside);
  const beforeScan = await scanTree(root);
  writeFileSync(path.join(root, 'a', 'f'), 'from the step');
  writeFileSync(path.join(outside, 'f'), 'from the host');
  await run('setfattr', ['-n', 'user.host', '-v', 'leak', path.join(outside, 'f')]);
  const afterScan = await scanTree(root);
  renameSync(path.join(root, 'a'), path.join(root, 'a2'));
  symlinkSync(outside, path.join(root, 'a'));
  const entries = await diffTrees(beforeScan, afterScan, root);
  const file = entries.find((entry) => entry.path === 'a/f');
  assert.ok(file?.open);
  assert.equal(file.xattrs, undefined, 'no attribute read through the symlink');
  assert.throws(() => file.open!(), (error: unknown) => error instanceof TsbuildError && error.code === 'SNAPSHOT_CHANGED' && error.message === 'a/f changed while its layer was being written');
});

test('--isolation=none: restoring placed files after /etc was swapped for a symlink writes nothing outside', async () => {
  const root = path.join(work, `in-place-root-${++counter}`);
  const host = path.join(work, `in-place-host-${counter}`);
  mkdirSync(path.join(root, 'etc'), { recursive: true });
  mkdirSync(host);
  writeFileSync(path.join(root, 'etc', 'hosts'), 'image hosts\n');
  writeFileSync(path.join(host, 'hosts'), 'host canary\n');
  const source = path.join(work, `bind-source-${counter}`);
  writeFileSync(source, 'generated hosts\n');
  const placed = await placeBindFiles(root, [{ destination: '/etc/hosts', source, readonly: true }, { destination: '/etc/hostname', source, readonly: true }], () => false);
  assert.equal(await readFile(path.join(root, 'etc', 'hosts'), 'utf8'), 'generated hosts\n');
  // What the step does: moves /etc away and plants a symlink to a host directory in its place.
  renameSync(path.join(root, 'etc'), path.join(root, 'etc2'));
  symlinkSync(host, path.join(root, 'etc'));
  await placed.restore();
  assert.equal(await readFile(path.join(host, 'hosts'), 'utf8'), 'host canary\n');
  assert.equal(existsSync(path.join(host, 'hostname')), false);
  assert.equal(await readFile(path.join(root, 'etc2', 'hosts'), 'utf8'), 'generated hosts\n', 'a moved file is left as the step left it');
});
