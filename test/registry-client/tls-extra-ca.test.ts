/**
 * A registry transport trusts the extra CAs that bin/tsbuild hands on as TSBUILD_EXTRA_CA_CERTS,
 * and, for library callers, those of NODE_EXTRA_CA_CERTS. The trusted set is read once a process,
 * so each case runs in a node of its own, with only the variable it tests.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { repoRoot } from '../support/repo-root.js';

const run = promisify(execFile);

let registry: TestRegistry;
before(async () => {
  registry = await startRegistry({ tls: true });
});
after(() => registry?.stop());

/** Pings the registry over HTTPS from a new node with `caVariables`; its output, or the error it printed. */
async function pingWith(caVariables: NodeJS.ProcessEnv): Promise<{ ok: boolean; output: string }> {
  const transport = path.join(repoRoot(), 'dist/registry-client/transport.js');
  const script = `import { RegistryTransport } from ${JSON.stringify(transport)};
const t = new RegistryTransport(${JSON.stringify(registry.host)}, { insecure: false });
try { await t.ping(); console.log('pinged'); } catch (e) { console.log(e.message); process.exitCode = 1; } finally { await t.close(); }`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  delete env.TSBUILD_EXTRA_CA_CERTS;
  return run(process.execPath, ['--input-type=module', '-e', script], { env: { ...env, ...caVariables } }).then(
    ({ stdout }) => ({ ok: true, output: stdout.trim() }),
    (error: { stdout: string }) => ({ ok: false, output: error.stdout.trim() }),
  );
}

test('TSBUILD_EXTRA_CA_CERTS makes the registry\'s CA trusted', async () => {
  assert.deepEqual(await pingWith({ TSBUILD_EXTRA_CA_CERTS: registry.caFile! }), { ok: true, output: 'pinged' });
});

test('NODE_EXTRA_CA_CERTS does too, for a library caller', async () => {
  assert.deepEqual(await pingWith({ NODE_EXTRA_CA_CERTS: registry.caFile! }), { ok: true, output: 'pinged' });
});

test('without either, the connection is refused for its certificate', async () => {
  const { ok, output } = await pingWith({});
  assert.equal(ok, false);
  assert.match(output, /^tls: secure connection to 127\.0\.0\.1:\d+ failed: .*\[UNABLE_TO_VERIFY_LEAF_SIGNATURE\]/);
});
