import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, lstatSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readLinkAt, statAt } from '../../../layers/native/stat-at.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-stat-at-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('statx relative to a directory gives what lstat gives, for every kind of node', () => {
  writeFileSync(join(work, 'file'), 'twelve bytes');
  mkdirSync(join(work, 'dir'));
  symlinkSync('/nowhere/at/all', join(work, 'link'));
  execFileSync('mkfifo', [join(work, 'fifo')]);
  execFileSync('mknod', [join(work, 'char'), 'c', '4095', '1048575']);
  execFileSync('mknod', [join(work, 'block'), 'b', '7', '1']);
  const dirFd = openSync(work, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    for (const name of ['file', 'dir', 'link', 'fifo', 'char', 'block']) {
      const expected = lstatSync(join(work, name), { bigint: true });
      const got = statAt(dirFd, name);
      assert.deepEqual(got, {
        mode: Number(expected.mode),
        uid: Number(expected.uid),
        gid: Number(expected.gid),
        nlink: Number(expected.nlink),
        size: expected.size,
        ino: expected.ino,
        dev: expected.dev,
        rdev: expected.rdev,
        mtimeNs: expected.mtimeNs,
        ctimeNs: expected.ctimeNs,
        birthtimeNs: expected.birthtimeNs,
      }, name);
    }
    assert.equal(readLinkAt(dirFd, 'link'), '/nowhere/at/all');
    assert.equal(statAt(dirFd, 'missing'), undefined);
    assert.equal(readLinkAt(dirFd, 'missing'), undefined);
    assert.throws(() => readLinkAt(dirFd, 'file'), (error: unknown) => (error as NodeJS.ErrnoException).code === 'EINVAL');
  } finally {
    closeSync(dirFd);
  }
});
