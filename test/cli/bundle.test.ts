/**
 * The bundled CLI that bin/tsbuild starts through dist/cli/start.cjs (dist/cli-bundle/tsbuild.cjs,
 * made by scripts/bundle-cli.ts). Its modules find files beside their original ones in dist/ (the
 * step server, the workspace watchdog, package.json) and load koffi and CommonJS packages; its
 * code cache is written once, kept, and never used for another bundle or other node options.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { originalUrlPlugin } from '../../scripts/original-url-plugin.js';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startUntilStepStarted } from '../support/step-started.js';
import { repoRoot } from '../support/repo-root.js';
import { ensureUser, runAs } from '../support/unprivileged-user.js';

const run = promisify(execFile);
const launcher = path.join(repoRoot(), 'bin/tsbuild');
const bundleDir = path.join(repoRoot(), 'dist/cli-bundle');

let work: string;
let base: string;
before(async () => {
  work = await realpath(await mkdtemp(path.join(os.tmpdir(), 'tsbuild-bundle-')));
  base = path.join(work, 'busybox');
  await writeBusyboxImage(base);
});
after(() => rm(work, { recursive: true, force: true }));

const bundleFile = path.join(bundleDir, 'tsbuild.cjs');

/** The bundle's modules (each starts with a `// path` comment). */
async function bundledModules(): Promise<{ module: string; code: string }[]> {
  const parts = (await readFile(bundleFile, 'utf8')).split(/^\/\/ (\S+)$/m);
  const modules: { module: string; code: string }[] = [];
  for (let i = 1; i < parts.length; i += 2) modules.push({ module: parts[i]!, code: parts[i + 1]! });
  return modules;
}

test('every import.meta.url in the bundle is its module\'s original file, which exists', async () => {
  const modules = await bundledModules();
  assert.ok(modules.some((m) => m.module === 'dist/cli/command-line.js'), 'the bundle names its modules');
  let replaced = 0;
  for (const { module, code } of modules) {
    assert.doesNotMatch(code, /import\.meta/, `${module} keeps an import.meta`);
    for (const use of code.matchAll(/new URL\("([^"]+)", __tsbuildBundleUrl\)/g)) {
      const original = fileURLToPath(new URL(use[1]!, `file://${bundleDir}/`));
      assert.equal(path.relative(repoRoot(), original), module, `${module} is given another file's URL`);
      assert.ok(existsSync(original), `${original} is missing`);
      replaced++;
    }
  }
  assert.ok(replaced >= 8, `only ${replaced} uses of import.meta.url found`);
});

test('the bundle is ASCII, which start.cjs reads as Latin-1', async () => {
  const bytes = await readFile(bundleFile);
  assert.equal(bytes.findIndex((byte) => byte > 0x7f), -1);
});

test('bundling refuses a module of dist/ that uses another import.meta property', async () => {
  const dist = path.join(work, 'dist');
  await mkdir(path.join(dist, 'cli'), { recursive: true });
  await writeFile(path.join(dist, 'cli/main.js'), 'export const here = import.meta.url;\nexport const dir = import.meta.dirname;\n');
  const outdir = path.join(dist, 'cli-bundle');
  await assert.rejects(
    build({ entryPoints: [path.join(dist, 'cli/main.js')], outdir, bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent', plugins: [originalUrlPlugin(outdir, dist, 'import.meta.url')] }),
    /cli\/main\.js:2: only import\.meta\.url can be given its original value in the bundle/,
  );
});

/** NODE_OPTIONS that make every node process started with them append `PID SCRIPT` to `log`. */
async function startLogOptions(log: string): Promise<string> {
  const preload = path.join(path.dirname(log), 'log-start.cjs');
  await writeFile(preload, `require('node:fs').appendFileSync(${JSON.stringify(log)}, process.pid + ' ' + process.argv[1] + '\\n');\n`);
  await chmod(preload, 0o644);
  return `--require ${preload}`;
}

/** The scripts the processes of a start log ran, one per process. */
async function startedScripts(log: string): Promise<string[]> {
  return (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '').map((line) => line.slice(line.indexOf(' ') + 1));
}

test('through bin/tsbuild, a RUN build uses the step server', async () => {
  const runtime = await findOciRuntime();
  assert.equal(process.getuid?.(), 0, 'a build with --isolation oci needs root');
  assert.ok(runtime, 'a build with --isolation oci needs an OCI runtime (runc)');
  const context = path.join(work, 'run');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo from-the-step > /out.txt\n');
  const out = path.join(work, 'run-out');
  const { stderr } = await run(launcher, ['build', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=local,dest=${out}`, context], {
    env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache') },
  });
  assert.equal(await readFile(path.join(out, 'out.txt'), 'utf8'), 'from-the-step\n');
  // Without its step server (dist/builder/isolation/step-server.cjs), each step would get a container of its own.
  assert.doesNotMatch(stderr, /the shared one did not start/);
});

test('through bin/tsbuild, a build killed with SIGKILL is swept by its watchdog', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'a build with --isolation oci needs root');
  const context = path.join(work, 'killed');
  const tmp = path.join(work, 'tmp-killed');
  await mkdir(context);
  await mkdir(tmp);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 30\n');
  const build = await startUntilStepStarted(launcher, ['build', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=oci,dest=${path.join(work, 'killed-out')}`, context], {
    ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache'), TMPDIR: tmp,
  });
  assert.ok((await readdir(tmp)).length > 0, 'the build has a workspace');
  build.child.kill('SIGKILL');
  assert.equal((await build.ended).signal, 'SIGKILL');
  const deadline = Date.now() + 15_000;
  while ((await readdir(tmp)).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await readdir(tmp), [], 'the watchdog swept the workspace');
});

test('through bin/tsbuild, an unprivileged user\'s build re-executes the bundled CLI in its user namespace', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'making the unprivileged test user needs root');
  const user = await ensureUser('tsbuild-test', true);
  const root = path.join(work, 'unprivileged');
  for (const dir of [root, path.join(root, 'home'), path.join(root, 'tmp'), path.join(root, 'context')]) {
    await mkdir(dir, { recursive: true });
    await chown(dir, user.uid, user.gid);
  }
  await chmod(work, 0o755);
  await writeFile(path.join(root, 'context/Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
  const log = path.join(root, 'tmp/start.log');
  const result = await runAs(user, launcher, ['build', '--isolation', 'rootless', '-o', `type=oci,dest=${path.join(root, 'tmp/out')}`, path.join(root, 'context')], {
    HOME: path.join(root, 'home'), TMPDIR: path.join(root, 'tmp'), PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODE_OPTIONS: await startLogOptions(log),
  }, root);
  assert.equal(result.code, 0, result.stderr);
  // The launcher's process, then the one re-executed in the user namespace.
  assert.deepEqual(await startedScripts(log), [path.join(await realpath(repoRoot()), 'dist/cli/start.cjs'), path.join(await realpath(repoRoot()), 'dist/cli/start.cjs')]);
});
