import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { isErrnoCode } from '../../../layers/fs-util.js';
import { errnoError, libc } from '../../../layers/native/libc.js';

test('a failed C call becomes a Node-style system error with the errno name', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-libc-'));
  try {
    const rmdir = libc().lib.func('int rmdir(const char *path)');
    const missing = path.join(dir, 'missing');
    assert.equal(rmdir(missing), -1);
    const error = errnoError('rmdir', missing);
    assert.ok(isErrnoCode(error, 'ENOENT'));
    assert.equal(error.syscall, 'rmdir');
    assert.equal(error.path, missing);
    assert.match(error.message, /^ENOENT: rmdir '.*missing' failed$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
