import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { buildForTest } from '../../support/build-for-test.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { requires } from '../../support/requirement.js';
import { unpackWithUmoci, validateLayout } from '../../support/validate-layout.js';

const isRoot = process.getuid?.() === 0;
const skip = requires(!isRoot ? 'needs root to run RUN steps with runc' : (await findOciRuntime()) ? false : 'needs runc or crun');

let work: string;
let baseLayout: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-copy-run-'));
  baseLayout = path.join(work, 'busybox');
  await writeBusyboxImage(baseLayout);
});
after(() => rm(work, { recursive: true, force: true }));

const MTIME = new Date('2022-02-03T04:05:06Z');

/** Writes `files` (path to content) into `dir` as root-owned 0644 files dated MTIME, as COPY keeps them. */
async function writeContext(dir: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    await chmod(file, 0o644);
    await utimes(file, MTIME, MTIME);
  }
}

test('RUN steps that change what a COPY placed change the image, never the build context', { skip }, async () => {
  const context = path.join(work, 'context');
  await writeContext(context, { 'data': 'original\n', 'sub/gone': 'to delete\n', 'sub/kept': 'kept\n', 'late/extra': 'second copy\n' });
  const dockerfileDir = path.join(work, 'dockerfile');
  await mkdir(dockerfileDir);
  await writeFile(path.join(dockerfileDir, 'Dockerfile'), [
    'FROM busybox',
    'COPY data sub /app/',
    'RUN echo appended >> /app/data && chmod 600 /app/data && rm /app/gone && echo new > /app/new',
    'COPY late/extra /app/',
    'RUN cat /app/data /app/extra > /app/both && echo over > /app/extra',
    '',
  ].join('\n'));
  const before = await Promise.all(['data', 'sub/gone', 'sub/kept', 'late/extra'].map((name) => lstat(path.join(context, name))));

  const dest = path.join(work, 'image');
  await buildForTest({
    context,
    dockerfile: path.join(dockerfileDir, 'Dockerfile'),
    tags: ['t:1'],
    outputs: [{ type: 'oci', dest, tar: false }],
    buildContexts: [`busybox=oci-layout://${baseLayout}`],
    isolation: 'oci',
    noCache: true,
  });

  // The context is as it was: same content, mode and mtime, and no link of it left behind.
  assert.equal(await readFile(path.join(context, 'data'), 'utf8'), 'original\n');
  assert.equal(await readFile(path.join(context, 'sub/gone'), 'utf8'), 'to delete\n');
  assert.equal(await readFile(path.join(context, 'late/extra'), 'utf8'), 'second copy\n');
  const afterBuild = await Promise.all(['data', 'sub/gone', 'sub/kept', 'late/extra'].map((name) => lstat(path.join(context, name))));
  for (const [i, stats] of afterBuild.entries()) {
    assert.equal(stats.mode, before[i]!.mode);
    assert.equal(stats.mtimeMs, before[i]!.mtimeMs);
    assert.equal(stats.nlink, 1);
  }

  await validateLayout(dest);
  const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
  try {
    const read = (name: string): Promise<string> => readFile(path.join(rootfs, 'app', name), 'utf8');
    assert.equal(await read('data'), 'original\nappended\n');
    assert.equal((await lstat(path.join(rootfs, 'app/data'))).mode & 0o7777, 0o600);
    await assert.rejects(lstat(path.join(rootfs, 'app/gone')), { code: 'ENOENT' });
    assert.equal(await read('kept'), 'kept\n');
    assert.equal(await read('new'), 'new\n');
    assert.equal(await read('both'), 'original\nappended\nsecond copy\n');
    assert.equal(await read('extra'), 'over\n');
  } finally {
    await cleanup();
  }
});
