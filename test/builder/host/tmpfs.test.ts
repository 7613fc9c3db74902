import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { isMountPoint } from '../../../builder/host/mountinfo.js';
import { mountPrivateTmpfs, unmountPrivateTmpfs } from '../../../builder/host/tmpfs.js';

const work = mkdtempSync(path.join(tmpdir(), 'tsbuild-tmpfs-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The mountinfo line of the mount at `dir`. */
async function mountLine(dir: string): Promise<string> {
  const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === dir);
  assert.ok(line, `${dir} is not in mountinfo`);
  return line;
}

test('a private tmpfs is owner-only, nosuid/nodev/noexec, sized, and its content goes with the unmount', async () => {
  assert.equal(process.getuid?.(), 0, 'mounting a tmpfs needs root: run this test as root');
  const dir = path.join(work, 'scratch');
  await mkdir(dir, { mode: 0o755 });
  assert.equal(await mountPrivateTmpfs(dir, 100_000), true);
  try {
    const line = await mountLine(dir);
    const options = line.split(' ')[5]!;
    const superblock = line.split(' - ')[1]!;
    for (const flag of ['nosuid', 'nodev', 'noexec']) assert.ok(options.split(',').includes(flag), `${flag} missing in ${options}`);
    assert.match(superblock, /^tmpfs tmpfs /);
    // 100 000 bytes round up to 25 pages, plus two.
    assert.match(superblock, /size=108k/);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await writeFile(path.join(dir, 'secret'), 'hunter2');
  } finally {
    await unmountPrivateTmpfs(dir);
  }
  assert.equal(await isMountPoint(dir), false);
  assert.deepEqual(await readdir(dir), []);
  assert.equal((await stat(dir)).mode & 0o777, 0o755);
});

test('unmounting a directory nothing is mounted on leaves it as it was', async () => {
  const dir = path.join(work, 'plain');
  await mkdir(dir);
  await writeFile(path.join(dir, 'kept'), 'x');
  await unmountPrivateTmpfs(dir);
  assert.deepEqual(await readdir(dir), ['kept']);
});

test('a busy tmpfs is still detached', async () => {
  const dir = path.join(work, 'busy');
  await mkdir(dir);
  assert.equal(await mountPrivateTmpfs(dir, 4096), true);
  await writeFile(path.join(dir, 'open'), 'x');
  const handle = await open(path.join(dir, 'open'), 'r');
  try {
    await unmountPrivateTmpfs(dir);
    assert.equal(await isMountPoint(dir), false);
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await handle.close();
  }
});
