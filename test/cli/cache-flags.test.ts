import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { tsbuild } from './cli-harness.js';
import { validateLayout } from '../support/validate-layout.js';

test('--no-cache, --no-cache-filter, --cache-dir and prune are accepted and act on the named cache', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-cache-flags-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch AS base\nCOPY a.txt /\nFROM base\nCOPY a.txt /b.txt\n');
    await writeFile(path.join(dir, 'a.txt'), 'a\n');
    const cacheDir = path.join(dir, 'cache');
    const build = (...flags: string[]) => tsbuild(['--progress', 'plain', '--cache-dir', cacheDir, '-o', `type=oci,dest=${path.join(dir, 'out')}`, ...flags, dir]);
    assert.equal((await build()).code, 0);
    const cached = await build();
    assert.equal((cached.stderr.match(/^#\d+ CACHED$/gm) ?? []).length, 2, cached.stderr);
    const filtered = await build('--no-cache-filter', 'base');
    assert.equal((filtered.stderr.match(/^#\d+ CACHED$/gm) ?? []).length, 1, filtered.stderr);
    const disabled = await build('--no-cache', '--explain-cache');
    assert.equal((disabled.stderr.match(/^#\d+ cache miss: --no-cache$/gm) ?? []).length, 2, disabled.stderr);
    const pruned = await tsbuild(['prune', '--cache-dir', cacheDir], { TSBUILD_CACHE_DIR: path.join(dir, 'tsbuild-cache') });
    assert.match(pruned.stdout, /^removed [1-9]\d* cache entries, \d+ bytes, and \d+ RUN cache mounts$/);
    const rebuilt = await build('--explain-cache');
    assert.match(rebuilt.stderr, /^#\d+ cache miss: first build of this step$/m);
    await validateLayout(path.join(dir, 'out'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
