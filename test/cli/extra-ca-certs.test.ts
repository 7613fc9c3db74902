/**
 * The CAs that NODE_EXTRA_CA_CERTS names are trusted by `ADD https://…`, though bin/tsbuild hides
 * that variable from node (which would parse the file at every start) and hands it on as
 * TSBUILD_EXTRA_CA_CERTS. The server is a registry on 127.0.0.1 whose certificate a fresh CA
 * issued, trusted through that variable alone. (The CLI reaches a loopback registry over plain
 * HTTP: test/registry-client/tls-extra-ca.test.ts checks registry connections.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);
const launcher = path.join(repoRoot(), 'bin/tsbuild');
const unbundled = path.join(repoRoot(), 'dist/cli/main.js');

let work: string;
let registry: TestRegistry;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-extra-ca-'));
  registry = await startRegistry({ tls: true });
  // The registry's /v2/ answers `{}`: enough of a file for ADD.
  const context = path.join(work, 'context');
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), `FROM scratch\nADD https://${registry.host}/v2/ /v2.json\n`);
});
after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

interface Outcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command ARGS` with the CA variables given (and no other), its own cache and store. */
async function tsbuildWith(command: readonly string[], args: readonly string[], caVariables: NodeJS.ProcessEnv, name: string): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, TSBUILD_CACHE_DIR: path.join(work, `cache-${name}`), TSBUILD_STORE: path.join(work, `store-${name}`) };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.TSBUILD_EXTRA_CA_CERTS;
  const [file, ...first] = command as [string, ...string[]];
  return run(file, [...first, ...args], { env: { ...env, ...caVariables } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}

function addUrl(command: readonly string[], caVariables: NodeJS.ProcessEnv, name: string): Promise<Outcome> {
  const out = path.join(work, `out-${name}`);
  return tsbuildWith(command, ['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, path.join(work, 'context')], caVariables, name);
}

test('through bin/tsbuild, NODE_EXTRA_CA_CERTS makes ADD https://… work', async () => {
  const built = await addUrl([launcher], { NODE_EXTRA_CA_CERTS: registry.caFile! }, 'add-launcher');
  assert.equal(built.code, 0, built.stderr);
  assert.equal((await readFile(path.join(work, 'out-add-launcher', 'v2.json'), 'utf8')).trim(), '{}');
});

test('without the CA, ADD fails naming the URL and the certificate problem', async () => {
  const built = await addUrl([launcher], { NODE_EXTRA_CA_CERTS: '' }, 'add-untrusted');
  assert.notEqual(built.code, 0);
  assert.match(built.stderr, new RegExp(`^error: .*failed to download https://${registry.host}/v2/: .*certificate`, 'm'));
});

test('run without the launcher, tsbuild reads NODE_EXTRA_CA_CERTS itself, and TSBUILD_EXTRA_CA_CERTS too', async () => {
  const direct = await addUrl([process.execPath, unbundled], { NODE_EXTRA_CA_CERTS: registry.caFile! }, 'add-node-variable');
  assert.equal(direct.code, 0, direct.stderr);
  const handedOn = await addUrl([process.execPath, unbundled], { TSBUILD_EXTRA_CA_CERTS: registry.caFile! }, 'add-direct');
  assert.equal(handedOn.code, 0, handedOn.stderr);
});
