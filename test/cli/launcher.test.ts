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

test('the package\'s command is the launcher, shipped with the bundled CLI it starts', async () => {
  const manifest = JSON.parse(await readFile(path.join(repoRoot(), 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
  assert.equal(manifest.bin['tsbuild'], 'bin/tsbuild');
  assert.ok(manifest.files.includes('bin'));
  assert.ok(manifest.files.includes('dist/cli-bundle'));
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

/** A `node` first on PATH that only reports how it was started: its CA variables, then its arguments. */
async function fakeNodePath(): Promise<string> {
  const fakeBin = path.join(work, 'fake-bin');
  await mkdir(fakeBin, { recursive: true });
  const report = 'printf "%s\\n" "${NODE_EXTRA_CA_CERTS-(unset)}" "${TSBUILD_EXTRA_CA_CERTS-(unset)}"; for arg in "$@"; do printf "%s\\n" "$arg"; done';
  await writeFile(path.join(fakeBin, 'node'), `#!/bin/sh\n${report}\n`);
  await chmod(path.join(fakeBin, 'node'), 0o755);
  return `${fakeBin}:/usr/bin:/bin`;
}

/** What the launcher gives node, run with `env` in place of the CA variables of this process. */
async function startedNode(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ nodeCa: string; tsbuildCa: string; argv: string[] }> {
  const base: NodeJS.ProcessEnv = { ...process.env, PATH: await fakeNodePath() };
  delete base.NODE_EXTRA_CA_CERTS;
  delete base.TSBUILD_EXTRA_CA_CERTS;
  const { stdout } = await run(linked, args, { env: { ...base, ...env } });
  const [nodeCa, tsbuildCa, ...argv] = stdout.split('\n').slice(0, -1);
  return { nodeCa: nodeCa!, tsbuildCa: tsbuildCa!, argv };
}

test('the launcher starts the node on PATH with its heap settings, the bundled CLI and the arguments as given', async () => {
  const { argv } = await startedNode(['build', 'a b', '--tag=x'], {});
  const cli = path.join(await realpath(repoRoot()), 'dist/cli/start.cjs');
  const [semiSpace, oldGrowth, script, ...args] = argv;
  assert.deepEqual([semiSpace, oldGrowth], ['--max-semi-space-size=2', '--heap-growing-percent=30']);
  assert.equal(path.resolve(script!), cli);
  assert.deepEqual(args, ['build', 'a b', '--tag=x']);
});

test('the launcher hands NODE_EXTRA_CA_CERTS on as TSBUILD_EXTRA_CA_CERTS, and node gets none', async () => {
  const moved = await startedNode(['--version'], { NODE_EXTRA_CA_CERTS: '/etc/some ca.pem' });
  assert.deepEqual([moved.nodeCa, moved.tsbuildCa, moved.argv.at(-1)], ['(unset)', '/etc/some ca.pem', '--version']);
  const empty = await startedNode(['--version'], { NODE_EXTRA_CA_CERTS: '' });
  assert.deepEqual([empty.nodeCa, empty.tsbuildCa], ['(unset)', '(unset)']);
  const none = await startedNode(['--version'], { TSBUILD_EXTRA_CA_CERTS: '/etc/given.pem' });
  assert.deepEqual([none.nodeCa, none.tsbuildCa], ['(unset)', '/etc/given.pem']);
});
