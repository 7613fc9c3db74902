import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { acquireLockFile, tryLockFile } from '../../layers/layout-lock.js';

const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-lock-'));
after(() => rm(work, { recursive: true, force: true }));

test('tryLockFile takes a free lock, and gives up at once while a live holder has it', async () => {
  const lock = path.join(work, 'try.lock');
  const release = await tryLockFile(lock);
  assert.ok(release);
  assert.equal(await tryLockFile(lock), undefined);
  await release();
  await assert.rejects(access(lock));
  const again = await tryLockFile(lock);
  assert.ok(again, 'free once released');
  await again();
});

test('tryLockFile breaks a lock whose holder on this host is gone', async () => {
  const lock = path.join(work, 'stale.lock');
  // pid 2^22 + 1 is above the kernel's largest pid, so no process has it.
  await writeFile(lock, JSON.stringify({ pid: 4194305, host: hostname(), token: 'gone' }));
  const release = await tryLockFile(lock);
  assert.ok(release);
  assert.equal(JSON.parse(await readFile(lock, 'utf8')).pid, process.pid);
  await release();
});

test('acquireLockFile waits for the holder to release', async () => {
  const lock = path.join(work, 'wait.lock');
  const first = await acquireLockFile(lock);
  let taken = false;
  const waiting = acquireLockFile(lock, { timeoutMs: 5000 }).then((release) => {
    taken = true;
    return release;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(taken, false, 'still waiting');
  await first();
  const second = await waiting;
  await second();
});
