/**
 * The bundled CLI that bin/tsbuild starts (dist/cli-bundle, made by scripts/bundle-cli.ts). Its
 * modules find files beside their original ones in dist/ (the step server, the workspace watchdog,
 * package.json), load koffi and CommonJS packages, and leave lazy what the unbundled CLI leaves lazy.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
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

/** The bundle's files, each split into the modules esbuild put in it (each starts with a `// path` comment). */
async function bundledModules(): Promise<{ chunk: string; module: string; code: string }[]> {
  const modules: { chunk: string; module: string; code: string }[] = [];
  for (const chunk of (await readdir(bundleDir)).filter((name) => name.endsWith('.js'))) {
    const parts = (await readFile(path.join(bundleDir, chunk), 'utf8')).split(/^\/\/ (\S+)$/m);
    for (let i = 1; i < parts.length; i += 2) modules.push({ chunk, module: parts[i]!, code: parts[i + 1]! });
  }
  return modules;
}

test('every import.meta.url in the bundle is its module\'s original file, which exists', async () => {
  const modules = await bundledModules();
  assert.ok(modules.some((m) => m.module === 'dist/cli/main.js'), 'the bundle names its modules');
  let replaced = 0;
  for (const { chunk, module, code } of modules) {
    for (const use of code.matchAll(/(new URL\("([^"]+)", )?import\.meta\.url/g)) {
      assert.ok(use[2] !== undefined, `${chunk}: ${module} uses the chunk's own import.meta.url`);
      const original = fileURLToPath(new URL(use[2], `file://${bundleDir}/`));
      assert.equal(path.relative(repoRoot(), original), module, `${chunk}: ${module} is given another file's URL`);
      assert.ok(existsSync(original), `${chunk}: ${original} is missing`);
      replaced++;
    }
  }
  assert.ok(replaced >= 9, `only ${replaced} uses of import.meta.url found`);
});

test('bundling refuses a module of dist/ that uses another import.meta property', async () => {
  const dist = path.join(work, 'dist');
  await mkdir(path.join(dist, 'cli'), { recursive: true });
  await writeFile(path.join(dist, 'cli/main.js'), 'export const here = import.meta.url;\nexport const dir = import.meta.dirname;\n');
  const outdir = path.join(dist, 'cli-bundle');
  await assert.rejects(
    build({ entryPoints: [path.join(dist, 'cli/main.js')], outdir, bundle: true, format: 'esm', platform: 'node', write: false, logLevel: 'silent', plugins: [originalUrlPlugin(outdir, dist)] }),
    /cli\/main\.js:2: only import\.meta\.url can be given its original value in the bundle/,
  );
});

/**
 * NODE_OPTIONS for a module-loader hook, as test/cli/module-loading.test.ts uses, that appends
 * `PID URL` to `log` for each file a node process loads.
 */
function loadLogOptions(log: string): string {
  const hooks = `export async function load(url, context, next) {
    if (url.startsWith('file:')) (await import('node:fs')).appendFileSync(${JSON.stringify(log)}, process.pid + ' ' + url + '\\n');
    return next(url, context);
  }`;
  const registrar = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  return `--import data:text/javascript,${encodeURIComponent(registrar)}`;
}

/** The processes and files of a load log. */
async function readLoadLog(log: string): Promise<{ pid: string; url: string }[]> {
  return (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '').map((line) => {
    const [pid, url] = line.split(' ') as [string, string];
    return { pid, url };
  });
}

test('through bin/tsbuild, a RUN build uses the step server and loads no chunk of what it does not use', async () => {
  const runtime = await findOciRuntime();
  assert.equal(process.getuid?.(), 0, 'a build with --isolation oci needs root');
  assert.ok(runtime, 'a build with --isolation oci needs an OCI runtime (runc)');
  const context = path.join(work, 'run');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo from-the-step > /out.txt\n');
  const log = path.join(work, 'chunks.log');
  const out = path.join(work, 'run-out');
  const { stderr } = await run(launcher, ['build', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=local,dest=${out}`, context], {
    env: { ...process.env, NODE_OPTIONS: loadLogOptions(log), TSBUILD_CACHE_DIR: path.join(work, 'cache') },
  });
  assert.equal(await readFile(path.join(out, 'out.txt'), 'utf8'), 'from-the-step\n');
  // Without its step server (dist/builder/isolation/step-server.cjs), each step would get a container of its own.
  assert.doesNotMatch(stderr, /the shared one did not start/);

  const loaded = new Set((await readLoadLog(log)).map((entry) => entry.url).filter((url) => url.startsWith(`file://${bundleDir}/`)).map((url) => path.basename(url)));
  assert.ok(loaded.has('main.js'));
  const modules = (await bundledModules()).filter((m) => loaded.has(m.chunk)).map((m) => m.module);
  assert.ok(modules.includes('dist/builder/build.js'), 'the build ran from the bundle');
  const unused = /^(node_modules\/undici\/|dist\/registry-client\/(push|transport)\.js|dist\/builder\/(attest\/attach|output\/oci-archive|isolation\/(chroot|rootless|in-place-sandbox))\.js|dist\/layers\/docker-archive\.js)/;
  assert.deepEqual(modules.filter((m) => unused.test(m)), []);
});

test('through bin/tsbuild, a build killed with SIGKILL is swept by its watchdog', { timeout: 120_000 }, async () => {
  assert.equal(process.getuid?.(), 0, 'a build with --isolation oci needs root');
  const context = path.join(work, 'killed');
  const tmp = path.join(work, 'tmp-killed');
  await mkdir(context);
  await mkdir(tmp);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 30\n');
  const child = spawn(launcher, ['build', '--isolation', 'oci', '--progress', 'plain', '--build-context', `busybox=oci-layout://${base}`, '-o', `type=oci,dest=${path.join(work, 'killed-out')}`, context], {
    env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache'), TMPDIR: tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/^started$/m.test(stderr) || stderr.includes(' started\n')) resolve();
    });
    child.once('close', () => reject(new Error(`the build ended before its step started: ${stderr}`)));
  });
  assert.ok((await readdir(tmp)).length > 0, 'the build has a workspace');
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
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
  const log = path.join(root, 'tmp/load.log');
  const result = await runAs(user, launcher, ['build', '--isolation', 'rootless', '-o', `type=oci,dest=${path.join(root, 'tmp/out')}`, path.join(root, 'context')], {
    HOME: path.join(root, 'home'), TMPDIR: path.join(root, 'tmp'), PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODE_OPTIONS: loadLogOptions(log),
  }, root);
  assert.equal(result.code, 0, result.stderr);
  const loaded = await readLoadLog(log);
  const started = new Set(loaded.filter((entry) => entry.url === `file://${bundleDir}/main.js`).map((entry) => entry.pid));
  assert.equal(started.size, 2, 'the build ran in a second process, re-executed');
  assert.deepEqual(loaded.filter((entry) => entry.url.startsWith(`file://${path.join(repoRoot(), 'dist')}/`) && !entry.url.startsWith(`file://${bundleDir}/`)), []);
});
