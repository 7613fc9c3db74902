import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);
const launcher = path.join(repoRoot(), 'bin/tsbuild');

let work: string;
/** Where npm would link the command: a `.bin` folder of some other project. */
let linked: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-launcher-'));
  linked = path.join(work, 'node_modules/.bin/tsbuild');
  await mkdir(path.dirname(linked), { recursive: true });
  await symlink(launcher, linked);
});
after(() => rm(work, { recursive: true, force: true }));

test('the package\'s command is the launcher', async () => {
  const manifest = JSON.parse(await readFile(path.join(repoRoot(), 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
  assert.equal(manifest.bin['tsbuild'], 'bin/tsbuild');
  assert.ok(manifest.files.includes('bin'));
});

test('run through a link, as npm installs it, the launcher finds the CLI and answers', async () => {
  const { version } = JSON.parse(await readFile(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string };
  const { stdout } = await run(linked, ['--version']);
  assert.equal(stdout, `tsbuild ${version}\n`);
});

test('a failing command keeps the CLI\'s exit code and its one-line error', async () => {
  const failed = await run(linked, ['build', '-f', path.join(work, 'no-such-Dockerfile'), work]).then(
    () => assert.fail('the build should fail'),
    (error: { code: number; stderr: string }) => error,
  );
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /^error: .*no-such-Dockerfile/);
  assert.equal(failed.stderr.trim().split('\n').length, 1, failed.stderr);
});

test('the launcher starts the node on PATH with its heap settings, the CLI and the arguments as given', async () => {
  // A `node` that only reports how it was started.
  const fakeBin = path.join(work, 'fake-bin');
  await mkdir(fakeBin);
  await writeFile(path.join(fakeBin, 'node'), '#!/bin/sh\nfor arg in "$@"; do printf "%s\\n" "$arg"; done\n');
  await chmod(path.join(fakeBin, 'node'), 0o755);
  const { stdout } = await run(linked, ['build', 'a b', '--tag=x'], { env: { ...process.env, PATH: `${fakeBin}:/usr/bin:/bin` } });
  const cli = path.join(await realpath(repoRoot()), 'dist/cli/main.js');
  const [semiSpace, oldGrowth, script, ...args] = stdout.split('\n').slice(0, -1);
  assert.deepEqual([semiSpace, oldGrowth], ['--max-semi-space-size=2', '--heap-growing-percent=30']);
  assert.equal(path.resolve(script!), cli);
  assert.deepEqual(args, ['build', 'a b', '--tag=x']);
});
