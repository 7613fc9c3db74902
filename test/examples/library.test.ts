/** The library example runs as a user would run it, importing `tsbuild` through package.json `exports`. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { repoRoot } from '../support/repo-root.js';

const execFileAsync = promisify(execFile);

/** The files of an uncompressed layer tar, by name. */
async function tarFiles(tar: Buffer): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      files.set(entry.header.name, Buffer.concat(chunks).toString());
    }
  })();
  reader.end(tar);
  await done;
  return files;
}

test('examples/library builds its Dockerfile into an OCI layout and prints the manifest digest', async () => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'library-example-'));
  try {
    const dest = path.join(work, 'layout');
    const script = path.join(repoRoot(), 'dist/examples/library/build-image.js');
    const { stdout } = await execFileAsync(process.execPath, [script, dest], { env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work, 'cache') } });
    const blob = (digest: string): Promise<Buffer> => readFile(path.join(dest, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const index = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    assert.equal(index.manifests.length, 1);
    assert.equal(stdout.trim(), index.manifests[0]!.digest);
    assert.equal(index.manifests[0]!.annotations?.['io.containerd.image.name'], 'docker.io/library/example:1');
    assert.equal(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'], '1');
    const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as { config: { digest: string }; layers: { digest: string }[] };
    const config = JSON.parse((await blob(manifest.config.digest)).toString()) as { config: { Env: string[]; Cmd: string[] }; created: string };
    assert.ok(config.config.Env.includes('GREETING=hello'));
    assert.deepEqual(config.config.Cmd, ['/hello.txt']);
    assert.equal(Date.parse(config.created), 0, 'created is SOURCE_DATE_EPOCH');
    assert.equal(manifest.layers.length, 1);
    const files = await tarFiles(gunzipSync(await blob(manifest.layers[0]!.digest)));
    assert.equal(files.get('hello.txt'), 'hello from the tsbuild library\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
