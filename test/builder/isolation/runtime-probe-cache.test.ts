import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { probeKey, rememberedRuntime, rememberRuntime } from '../../../builder/isolation/runtime-probe-cache.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-probe-cache-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('a remembered runtime is found under the same key only', async () => {
  const runtime = join(work, 'runc');
  copyFileSync('/bin/true', runtime);
  const key = await probeKey([{ path: runtime, name: 'runc' }]);
  const cache = join(work, 'cache');
  assert.equal(await rememberedRuntime(cache, key), undefined);
  await rememberRuntime(cache, key, { path: runtime, name: 'runc' });
  assert.deepEqual(await rememberedRuntime(cache, key), { path: runtime, name: 'runc' });

  // An upgraded runtime (new mtime), another candidate list, or a damaged record: probe again.
  utimesSync(runtime, new Date(1_000_000_000_000), new Date(1_000_000_000_000));
  const upgraded = await probeKey([{ path: runtime, name: 'runc' }]);
  assert.notEqual(upgraded, key);
  assert.equal(await rememberedRuntime(cache, upgraded), undefined);
  const crun = join(work, 'crun');
  copyFileSync('/bin/true', crun);
  assert.notEqual(await probeKey([{ path: crun, name: 'crun' }, { path: runtime, name: 'runc' }]), upgraded);
  writeFileSync(join(cache, 'runtime-probe.json'), '{"key":');
  assert.equal(await rememberedRuntime(cache, key), undefined);
});

test('a cache directory that cannot be written costs nothing but the record', async () => {
  const blocker = join(work, 'not-a-dir');
  writeFileSync(blocker, '');
  await rememberRuntime(join(blocker, 'cache'), 'k', { path: '/usr/sbin/runc', name: 'runc' });
  assert.equal(await rememberedRuntime(join(blocker, 'cache'), 'k'), undefined);
});
