/**
 * Out of disk space: a full output names the full directory in one line; a full build cache gives
 * one warning and the build still succeeds. Both use small tmpfs mounts (root is needed to mount).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { cleanErrorLine, runCli, type ProcessResult } from './cli-process.js';
import { validateLayout } from '../support/validate-layout.js';

const exec = promisify(execFile);

let work: string;
let context: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-disk-full-'));
  context = path.join(work, 'context');
  await mkdir(context);
  // Random bytes do not compress: the layer is as big as the file.
  await writeFile(path.join(context, 'big.bin'), randomBytes(3 << 20));
  await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs `use` with a tmpfs of `size` mounted at a new directory, unmounted afterwards whatever happens. */
async function withTmpfs(name: string, size: string, use: (dir: string) => Promise<void>): Promise<void> {
  const dir = path.join(work, name);
  await mkdir(dir);
  await exec('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  try {
    await use(dir);
  } finally {
    await exec('umount', [dir]);
  }
}

function build(output: string, extra: string[] = []): Promise<ProcessResult> {
  return runCli(['build', '--progress', 'plain', ...extra, '-o', `type=oci,dest=${output}`, context], {
    TSBUILD_CACHE_DIR: path.join(work, 'cache'),
    TSBUILD_STORE: path.join(work, 'store'),
  }, 60_000);
}

/** Fills the file system holding `dir` until it has no space left. */
async function fill(dir: string): Promise<void> {
  await writeFile(path.join(dir, 'filler'), Buffer.alloc(4 << 20)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOSPC') throw err;
  });
}

describe('out of disk space', () => {
  test('a full output directory is named in one error line', async () => {
    await withTmpfs('small-output', '1m', async (dir) => {
      const output = path.join(dir, 'image');
      const result = await build(output, ['-q']);
      assert.equal(result.code, 1, result.stderr);
      const line = cleanErrorLine(result.stderr);
      assert.equal(line, `error: no space left on device: ${output} (the output) is full`, result.stderr);
    });
  });

  for (const { label, prepare } of [
    { label: 'a build cache that fills up during the build', prepare: async () => undefined },
    { label: 'a build cache that is full before the build', prepare: fill },
  ]) {
    test(`${label} gives one warning and the build succeeds`, async () => {
      await withTmpfs(`small-cache-${label.length}`, '1m', async (dir) => {
        await prepare(dir);
        const cacheDir = path.join(dir, 'build-cache');
        const output = path.join(work, `image-${label.length}`);
        const result = await build(output, ['--cache-dir', cacheDir]);
        assert.equal(result.code, 0, result.stderr);
        const warnings = result.stderr.split('\n').filter((line) => line.includes('is full'));
        assert.deepEqual(warnings, [`note: build cache ${cacheDir} is full (no space left on device): this build goes on without it`]);
        const index = JSON.parse(await readFile(path.join(output, 'index.json'), 'utf8'));
        assert.equal(index.manifests.length, 1);
        await validateLayout(output);
      });
    });
  }
});
