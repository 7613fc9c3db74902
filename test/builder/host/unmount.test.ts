import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { mountCall } from '../../../builder/host/mount-calls.js';
import { isMountPoint } from '../../../builder/host/mountinfo.js';
import { unmountAllUnder } from '../../../builder/host/unmount.js';

const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-unmount-'));
after(async () => {
  await unmountAllUnder(work);
  rmSync(work, { recursive: true, force: true });
});

test('mount(2) errors carry the errno code, the call and the target', async () => {
  const missing = path.join(work, 'no-such-dir');
  assert.throws(() => mountCall('tmpfs', missing, 'tmpfs', 0, ''), (error: NodeJS.ErrnoException) => {
    assert.equal(error.code, process.getuid?.() === 0 ? 'ENOENT' : 'EPERM');
    assert.equal(error.message, `${error.code}: mount '${missing}' failed`);
    return true;
  });
});

test('stacked mounts below a directory all come off, deepest first, through umount2(2)', async () => {
  assert.equal(process.getuid?.(), 0, 'mounting a tmpfs needs root: run this test as root');
  const outer = path.join(work, 'outer');
  await mkdir(outer);
  mountCall('tmpfs', outer, 'tmpfs', 0, 'size=64k');
  mountCall('tmpfs', outer, 'tmpfs', 0, 'size=64k');
  const inner = path.join(outer, 'inner');
  await mkdir(inner);
  mountCall('tmpfs', inner, 'tmpfs', 0, 'size=64k');
  await writeFile(path.join(inner, 'file'), 'x');
  await unmountAllUnder(outer);
  assert.equal(await isMountPoint(outer), false);
  assert.equal(await isMountPoint(inner), false);
});

test('unmounting a directory with nothing mounted, or a missing one, does nothing', async () => {
  const plain = path.join(work, 'plain');
  await mkdir(plain);
  await unmountAllUnder(plain);
  await unmountAllUnder(path.join(work, 'missing'));
  assert.equal(await isMountPoint(plain), false);
});
