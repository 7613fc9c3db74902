import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isMountPoint, mountPoints, mountsUnder } from '../../../builder/host/mountinfo.js';
import { requires } from '../../support/requirement.js';

const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-mountinfo-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('the root is a mount point and an ordinary directory is not', async () => {
  assert.ok((await mountPoints()).includes('/'));
  assert.equal(await isMountPoint(work), false);
  assert.deepEqual(await mountsUnder(work), []);
});

test('mount points with escaped characters are found, deepest first', { skip: requires(process.getuid?.() !== 0 && 'mounting needs root here') }, async () => {
  const outer = path.join(work, 'with space\tand tab');
  const inner = path.join(outer, 'inner\\dir');
  await mkdir(outer);
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', outer]);
  try {
    await mkdir(inner);
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', inner]);
    try {
      assert.ok(await isMountPoint(outer));
      assert.ok(await isMountPoint(inner));
      assert.deepEqual(await mountsUnder(work), [inner, outer]);
    } finally {
      execFileSync('umount', [inner]);
    }
  } finally {
    execFileSync('umount', [outer]);
  }
  assert.equal(await isMountPoint(outer), false);
});
