/** A path the user may not read is named in one line, as the user's to fix, never as an internal error. */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { buildAsUser, ensureUser } from '../support/unprivileged-user.js';

let work: string;
let hidden: string;
before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test makes a directory only root may read, then builds as a test user');
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-access-'));
  await chmod(work, 0o755);
  const locked = path.join(work, 'locked');
  await mkdir(locked, { mode: 0o700 });
  hidden = path.join(locked, 'base');
  await writeBusyboxImage(hidden);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('a build context the user may not read gives one line naming it', async () => {
  const user = await ensureUser('tsbuild-access', false);
  const { result } = await buildAsUser(user, path.join(work, 'user'), { Dockerfile: 'FROM base\nCOPY Dockerfile /\n' }, [`base=oci-layout://${hidden}`]);
  assert.equal(result.code, 1);
  const lines = result.stderr.trim().split('\n').filter((line) => line.startsWith('error:'));
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, new RegExp(`^error: permission denied: cannot \\w+ ${hidden}/`));
});
