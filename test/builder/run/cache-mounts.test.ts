import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Workspace } from '../../../builder/workspace/workspace.js';
import { openCacheMount, pruneCacheMounts } from '../../../builder/run/cache-mounts.js';
import type { CacheRunMount } from '../../../builder/model/mounts.js';

let work: string;
let workspace: Workspace;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'tsbuild-cache-mounts-'));
  workspace = await Workspace.create(work);
});
after(async () => {
  await workspace.remove();
  await rm(work, { recursive: true, force: true });
});

const mount = (id: string, sharing: CacheRunMount['sharing'] = 'shared'): CacheRunMount => ({ type: 'cache', target: '/c', id, sharing, readonly: false, mode: 0o750, uid: 0, gid: 0 });

test('a cache keeps its files between uses, made with the mount\'s mode', async () => {
  const cacheDir = path.join(work, 'keep');
  const first = await openCacheMount(mount('keep'), cacheDir, workspace);
  await writeFile(path.join(first.dir, 'kept'), 'x');
  await first.release();
  const second = await openCacheMount(mount('keep'), cacheDir, workspace);
  assert.equal(second.dir, first.dir);
  assert.deepEqual(await readdir(second.dir), ['kept']);
  assert.equal((await stat(second.dir)).mode & 0o7777, 0o750);
  await second.release();
});

test('prune removes only caches no step uses, whatever their sharing', async () => {
  const cacheDir = path.join(work, 'prune');
  const idle = await openCacheMount(mount('idle'), cacheDir, workspace);
  await idle.release();
  const shared = await openCacheMount(mount('shared'), cacheDir, workspace);
  const locked = await openCacheMount(mount('locked', 'locked'), cacheDir, workspace);
  assert.equal(await pruneCacheMounts(cacheDir), 1);
  await stat(shared.dir);
  await stat(locked.dir);
  await assert.rejects(stat(idle.dir), { code: 'ENOENT' });
  await shared.release();
  await locked.release();
  assert.equal(await pruneCacheMounts(cacheDir), 2);
  assert.deepEqual((await readdir(cacheDir)).filter((name) => !name.endsWith('.lock')), []);
});

test('a marker left by a process that is gone does not keep a cache', async () => {
  const cacheDir = path.join(work, 'stale');
  const cache = await openCacheMount(mount('stale'), cacheDir, workspace);
  await cache.release();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
  await writeFile(path.join(`${cache.dir}.users`, `${dead}-left`), JSON.stringify({ pid: Number(dead), host: hostname() }));
  assert.equal(await pruneCacheMounts(cacheDir), 1);
  assert.equal(await pruneCacheMounts(path.join(work, 'never-made')), 0);
});
