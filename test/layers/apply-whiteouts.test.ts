import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { removeLowerChildren, removeLowerContent } from '../../layers/apply-whiteouts.js';

describe('removeLowerContent and removeLowerChildren', () => {
  let dir: string;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'tsbuild-whiteouts-')));
    root = path.join(dir, 'root');
    outside = path.join(dir, 'outside');
    await mkdir(path.join(root, 'd/sub'), { recursive: true });
    await writeFile(path.join(root, 'd/old'), 'old');
    await writeFile(path.join(root, 'd/new'), 'new');
    await writeFile(path.join(root, 'd/sub/old2'), 'old2');
    await writeFile(path.join(root, 'd/sub/new2'), 'new2');
    await mkdir(outside);
    await writeFile(path.join(outside, 'precious'), 'p');
    await symlink(outside, path.join(root, 'd/link'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const at = (...parts: string[]): string => path.join(root, ...parts);

  test('a path the layer did not write is removed with everything under it', async () => {
    await removeLowerContent(at('d'), new Set());
    assert.deepEqual(await readdir(root), []);
    assert.equal(await readFile(path.join(outside, 'precious'), 'utf8'), 'p');
  });

  test('a written directory keeps the written paths and loses the rest', async () => {
    const written = new Set([at('d'), at('d/new'), at('d/sub'), at('d/sub/new2')]);
    await removeLowerContent(at('d'), written);
    assert.deepEqual((await readdir(at('d'))).sort(), ['new', 'sub']);
    assert.deepEqual(await readdir(at('d/sub')), ['new2']);
  });

  test('a written file is left as it is', async () => {
    await removeLowerContent(at('d/old'), new Set([at('d/old')]));
    assert.equal(await readFile(at('d/old'), 'utf8'), 'old');
  });

  test('symlinks are removed, never followed', async () => {
    await removeLowerContent(at('d/link'), new Set());
    assert.equal((await lstat(at('d/link')).catch(() => null)), null);
    // A written symlink to a directory is not searched for lower content either.
    await symlink(outside, at('d/link2'));
    await removeLowerContent(at('d/link2'), new Set([at('d/link2')]));
    assert.deepEqual(await readdir(outside), ['precious']);
  });

  test('missing paths and paths under files are nothing to remove', async () => {
    await removeLowerContent(at('nope'), new Set());
    await removeLowerContent(at('d/old/child'), new Set());
    await removeLowerChildren(at('d/old'), new Set());
    await removeLowerChildren(at('nope'), new Set());
    assert.equal(await readFile(at('d/old'), 'utf8'), 'old');
  });

  test('removeLowerChildren empties a directory but for the written paths, and keeps the directory', async () => {
    await removeLowerChildren(at('d'), new Set([at('d/sub'), at('d/sub/new2')]));
    assert.deepEqual(await readdir(at('d')), ['sub']);
    assert.deepEqual(await readdir(at('d/sub')), ['new2']);
    assert.deepEqual(await readdir(outside), ['precious']);
  });
});
