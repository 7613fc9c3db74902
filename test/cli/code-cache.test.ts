/**
 * The code cache dist/cli/start.cjs keeps beside the bundled CLI: written by the first run that
 * has none, replaced once by a build, then only read; never used for another bundle or other node
 * options; never written into a folder that replaced the bundle's while the command ran. Each test
 * runs a copy of the installation, so that the suite's other commands leave its caches alone.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startUntilStepStarted } from '../support/step-started.js';
import { repoRoot } from '../support/repo-root.js';

const execFileAsync = promisify(execFile);

let work: string;
let base: string;
before(async () => {
  work = await realpath(await mkdtemp(path.join(os.tmpdir(), 'tsbuild-code-cache-')));
  base = path.join(work, 'busybox');
  await writeBusyboxImage(base);
  const context = path.join(work, 'context');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
});
after(() => rm(work, { recursive: true, force: true }));

let copies = 0;

/** A copy of the installation: the launcher, package.json, the built CLI and library, node_modules linked. */
async function installation(): Promise<string> {
  const root = path.join(work, `install-${++copies}`);
  for (const part of ['bin', 'package.json', 'dist/cli', 'dist/builder', 'dist/layers', 'dist/registry-client']) {
    await cp(path.join(repoRoot(), part), path.join(root, part), { recursive: true });
  }
  await mkdir(path.join(root, 'dist/cli-bundle'));
  await cp(path.join(repoRoot(), 'dist/cli-bundle/tsbuild.cjs'), path.join(root, 'dist/cli-bundle/tsbuild.cjs'));
  await symlink(path.join(repoRoot(), 'node_modules'), path.join(root, 'node_modules'));
  return root;
}

/** Runs the installation's `bin/tsbuild` with `args`; fails the test with its output when it fails. */
async function tsbuild(root: string, args: readonly string[]): Promise<string> {
  const { stderr } = await execFileAsync(path.join(root, 'bin/tsbuild'), [...args], { env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache') } });
  return stderr;
}

const buildArgs = (): string[] => ['build', '-o', `type=oci,dest=${path.join(work, `out-${randomBytes(4).toString('hex')}`)}`, path.join(work, 'context')];

/** The code caches in the installation's bundle folder, by name, with their inode and modification time. */
async function caches(root: string): Promise<Map<string, string>> {
  const dir = path.join(root, 'dist/cli-bundle');
  const found = new Map<string, string>();
  for (const name of (await readdir(dir)).filter((n) => n !== 'tsbuild.cjs').sort()) {
    const info = await stat(path.join(dir, name));
    found.set(name, `${info.ino}:${info.mtimeMs}`);
  }
  return found;
}

test('a command writes the code cache as it exits, a build replaces it once, and later runs only read it', async () => {
  const root = await installation();
  await tsbuild(root, ['plan', path.join(work, 'context')]);
  const afterPlan = await caches(root);
  assert.deepEqual([...afterPlan.keys()].map((name) => name.replace(/\.[0-9a-f]{16}\./, '.ID.')), ['tsbuild.cjs.ID.command.cache']);
  await tsbuild(root, ['plan', path.join(work, 'context')]);
  assert.deepEqual(await caches(root), afterPlan, 'a second plan reads the cache and writes nothing');

  await tsbuild(root, buildArgs());
  const afterBuild = await caches(root);
  assert.equal(afterBuild.size, 2);
  const buildCache = [...afterBuild.keys()].find((name) => name.endsWith('.build.cache'));
  assert.ok(buildCache, 'the build wrote a cache of its own');
  await tsbuild(root, buildArgs());
  await tsbuild(root, ['plan', path.join(work, 'context')]);
  await tsbuild(root, ['--help']);
  assert.deepEqual(await caches(root), afterBuild, 'later commands read the caches and write nothing');
});

test('a cache V8 rejects is replaced, other node options get their own, and a rebuilt bundle meets none of them', async () => {
  const root = await installation();
  await tsbuild(root, buildArgs());
  const [written] = [...(await caches(root)).keys()];
  assert.ok(written?.endsWith('.build.cache'));
  const cacheFile = path.join(root, 'dist/cli-bundle', written);
  await writeFile(cacheFile, randomBytes((await stat(cacheFile)).size));
  const garbage = await readFile(cacheFile);
  await tsbuild(root, buildArgs());
  assert.notDeepEqual(await readFile(cacheFile), garbage, 'the rejected cache was written again');
  const rewritten = await caches(root);
  await tsbuild(root, buildArgs());
  assert.deepEqual(await caches(root), rewritten, 'the new cache is used');

  await execFileAsync(process.execPath, ['--max-semi-space-size=4', path.join(root, 'dist/cli/start.cjs'), ...buildArgs()], { env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache') } });
  const withOtherOptions = await caches(root);
  assert.equal(withOtherOptions.size, 2, 'other node options wrote a cache of their own');
  assert.equal(withOtherOptions.get(written), rewritten.get(written));

  // The same length, other bytes: V8 alone would take the old bytecode for it.
  const bundle = path.join(root, 'dist/cli-bundle/tsbuild.cjs');
  const source = await readFile(bundle, 'utf8');
  assert.ok(source.includes('// dist/cli/command-line.js'));
  await writeFile(bundle, source.replace('// dist/cli/command-line.js', '// dist/cli/command-LINE.js'));
  await tsbuild(root, buildArgs());
  assert.equal((await caches(root)).size, 3, 'the changed bundle wrote a cache of its own');
});

test('a cache is not written into a folder that replaced the bundle\'s while the command ran', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'a RUN step that runs long enough needs root and an OCI runtime');
  assert.ok(await findOciRuntime(), 'a RUN step needs an OCI runtime (runc)');
  const root = await installation();
  const context = path.join(work, 'slow');
  await mkdir(context, { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 2\n');
  const build = await startUntilStepStarted(path.join(root, 'bin/tsbuild'), ['build', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=oci,dest=${path.join(work, 'slow-out')}`, context], {
    ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache'),
  });
  const bundleDir = path.join(root, 'dist/cli-bundle');
  await rename(bundleDir, `${bundleDir}-moved`);
  await mkdir(bundleDir);
  await appendFile(path.join(bundleDir, 'placed-there'), '');
  assert.equal((await build.ended).code, 0, build.stderr());
  assert.deepEqual(await readdir(bundleDir), ['placed-there']);
  assert.deepEqual(await readdir(`${bundleDir}-moved`), ['tsbuild.cjs']);
});
