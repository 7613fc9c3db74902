/**
 * Device nodes in a base layer, unpacked by an unprivileged rootless build: no user namespace may
 * create them, so they are left out with a note naming them, and the build goes on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { repoRoot } from '../../support/repo-root.js';
import { buildAsUser, ensureUser } from '../../support/unprivileged-user.js';
import { validateLayout } from '../../support/validate-layout.js';

const run = promisify(execFile);

let work: string;
let withDevice: string;
before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test builds a base with a device node as root, then builds on it as a test user');
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-device-nodes-'));
  const busybox = path.join(work, 'busybox');
  await writeBusyboxImage(busybox);
  const context = path.join(work, 'base-context');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN mknod /console-node c 5 1 && mknod /null-node c 1 3\n');
  withDevice = path.join(work, 'with-device');
  await run(process.execPath, [
    path.join(repoRoot(), 'dist/cli/main.js'), '--isolation', 'oci', '--build-context', `busybox=oci-layout://${busybox}`,
    '-t', 'devbase', '-o', `type=oci,dest=${withDevice}`, context,
  ]);
  await validateLayout(withDevice);
  await run('chmod', ['-R', 'a+rX', work]);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('a rootless build skips the device nodes of its base with a note naming them', async () => {
  const user = await ensureUser('tsbuild-devices', false);
  const dockerfile = 'FROM base\nRUN test ! -e /console-node && test ! -e /null-node && echo no-nodes > /result\n';
  const { result } = await buildAsUser(user, path.join(work, 'user'), { Dockerfile: dockerfile }, [`base=oci-layout://${withDevice}:devbase`]);
  assert.equal(result.code, 0, result.stderr);
  const output = result.stdout + result.stderr;
  assert.match(output, /layer sha256:[0-9a-f]{64}: skipped 2 device nodes \(\/console-node, \/null-node\): this user namespace may not create them/);
});
