import assert from 'node:assert/strict';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import { cleanRootRelative, climbsAboveRoot, secureJoin } from '../../layers/secure-join.js';

describe('cleanRootRelative', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['/', ''],
    ['./', ''],
    ['..', ''],
    ['usr/bin/sh', 'usr/bin/sh'],
    ['./usr//bin/./sh/', 'usr/bin/sh'],
    ['/etc/passwd', 'etc/passwd'],
    ['../../etc/passwd', 'etc/passwd'],
    ['a/b/../../../c', 'c'],
    ['a/./b/..', 'a'],
    ['.wh..wh..opq', '.wh..wh..opq'],
    ['a/...', 'a/...'],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(cleanRootRelative(input), expected);
    });
  }
});

describe('climbsAboveRoot', () => {
  const cases: [string, boolean][] = [
    ['a/b', false],
    ['/a/b', false],
    ['a/..', false],
    ['a/../b/../c', false],
    ['..', true],
    ['../a', true],
    ['/../a', true],
    ['a/../../b', true],
    ['a/b/../../..', true],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} -> ${expected}`, () => {
      assert.equal(climbsAboveRoot(input), expected);
    });
  }
});

describe('secureJoin', () => {
  let dir: string;
  let root: string;

  before(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'tsbuild-securejoin-')));
    root = path.join(dir, 'root');
    await mkdir(path.join(root, 'real/deep'), { recursive: true });
    await mkdir(path.join(dir, 'outside'));
    await writeFile(path.join(root, 'file'), 'f');
    await symlink('/', path.join(root, 'slash'));
    await symlink('/real', path.join(root, 'absreal'));
    await symlink('real/deep', path.join(root, 'reldeep'));
    await symlink('../../../../..', path.join(root, 'up'));
    await symlink(path.join(dir, 'outside'), path.join(root, 'hostpath'));
    await symlink('reldeep/..', path.join(root, 'chain'));
    await symlink('loop-b', path.join(root, 'loop-a'));
    await symlink('loop-a', path.join(root, 'loop-b'));
    await symlink('missing/dir', path.join(root, 'dangling'));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cases: [string, string][] = [
    ['', ''],
    ['..', ''],
    ['real/deep', 'real/deep'],
    ['slash', ''],
    ['slash/real/x', 'real/x'],
    ['absreal/deep', 'real/deep'],
    ['reldeep/x', 'real/deep/x'],
    ['reldeep/..', 'real'],
    ['up', ''],
    ['up/etc/passwd', 'etc/passwd'],
    ['chain', 'real'],
    ['dangling/x', 'missing/dir/x'],
    ['nothing/../real', 'real'],
    ['file/x', 'file/x'],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} resolves to <root>/${expected}`, async () => {
      assert.equal(await secureJoin(root, input), path.join(root, expected));
    });
  }

  test('an absolute symlink to a host path is taken inside the root', async () => {
    // `hostpath` names the real directory next to the root; resolved, it must not leave the root.
    const resolved = await secureJoin(root, 'hostpath/x');
    assert.equal(resolved, path.join(root, dir.slice(1), 'outside/x'));
  });

  test('symlink loops are refused', async () => {
    await assert.rejects(
      secureJoin(root, 'loop-a/x'),
      (err) => err instanceof TsbuildError && err.code === 'UNSAFE_LAYER',
    );
  });
});
