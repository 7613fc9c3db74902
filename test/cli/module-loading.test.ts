/**
 * What a build loads: modules a build does not use stay unloaded (each costs start-up time). Seen
 * through a module-loader hook in a real CLI process, which logs every module it loads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);

/** Registers, in the process it is imported into, a hook appending each loaded file URL to $MODULE_LOG. */
const hooks = `export async function load(url, context, next) {
  if (url.startsWith('file:')) (await import('node:fs')).appendFileSync(process.env.MODULE_LOG, url + '\\n');
  return next(url, context);
}`;
const registrar = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-modules-'));
  await writeFile(path.join(work, 'Dockerfile'), 'FROM scratch\nCOPY a /a\n');
  await writeFile(path.join(work, 'a'), 'a\n');
  await writeBusyboxImage(path.join(work, 'busybox'));
  await writeFile(path.join(work, 'Dockerfile.run'), 'FROM busybox\nRUN echo hi > /hi\n');
});
after(() => rm(work, { recursive: true, force: true }));

/** The repository-relative modules a `tsbuild build` with `flags` loads. */
async function modulesLoaded(name: string, flags: readonly string[], output = `type=oci,dest=${path.join(work, `${name}.tar`)}`): Promise<string[]> {
  const log = path.join(work, `${name}.log`);
  const cli = path.join(repoRoot(), 'dist', 'cli', 'main.js');
  await run(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(registrar)}`, cli, 'build', '-q', ...flags, '--output', output, work], {
    env: { ...process.env, MODULE_LOG: log, TSBUILD_CACHE_DIR: path.join(work, 'cache') },
  });
  const dist = `${new URL(`file://${path.join(repoRoot(), 'dist')}/`)}`;
  return (await readFile(log, 'utf8')).split('\n').filter((url) => url.startsWith(dist)).map((url) => url.slice(dist.length));
}

test('a build without attestations loads none of the attestation modules but the flag parser', async () => {
  const attest = (await modulesLoaded('plain', [])).filter((file) => file.startsWith('builder/attest/'));
  assert.deepEqual(attest, ['builder/attest/attest-options.js']);
});

test('a build with --provenance loads the attestation modules', async () => {
  const loaded = await modulesLoaded('provenance', ['--provenance=mode=max']);
  for (const file of ['builder/attest/attach.js', 'builder/attest/provenance.js', 'builder/attest/attest-outputs.js']) assert.ok(loaded.includes(file), `${file} not loaded`);
});

test('a build into an OCI layout directory loads no archive writer', async () => {
  const loaded = await modulesLoaded('layout', [], `type=oci,dest=${path.join(work, 'layout-out')}`);
  for (const file of ['builder/output/oci-archive.js', 'layers/docker-archive.js', 'layers/layout-tar.js']) assert.ok(!loaded.includes(file), `${file} loaded`);
  assert.ok(loaded.includes('builder/output/oci-exporter.js'));
});

test('a RUN step under --isolation oci loads neither the other backends nor the push code', { skip: process.getuid?.() !== 0 && 'needs root for --isolation oci' }, async () => {
  const flags = ['-f', path.join(work, 'Dockerfile.run'), '--build-context', `busybox=oci-layout://${path.join(work, 'busybox')}`, '--isolation', 'oci'];
  const loaded = await modulesLoaded('oci', flags, `type=oci,dest=${path.join(work, 'oci-out')}`);
  assert.ok(loaded.includes('builder/isolation/oci-sandbox.js'), 'the oci sandbox ran');
  const unused = ['chroot', 'rootless', 'namespace-sandbox', 'namespace-probe', 'in-place', 'in-place-sandbox'].map((name) => `builder/isolation/${name}.js`);
  for (const file of [...unused, 'builder/rootfs/in-place.js', 'registry-client/push.js', 'registry-client/index.js']) assert.ok(!loaded.includes(file), `${file} loaded`);
});
