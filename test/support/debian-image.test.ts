import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, RefNameAnnotation, type ImageConfig, type Manifest } from '../../layers/types.js';
import { debianBookwormImage } from './debian-image.js';
import { validateLayout } from './validate-layout.js';
import { requires } from './requirement.js';

const execFileAsync = promisify(execFile);

test('the Debian bookworm fixture is a valid one-layer OCI image with /etc/debian_version', { skip: requires(process.getuid?.() !== 0 ? 'debootstrap needs root' : false), timeout: 40 * 60_000 }, async () => {
  const firstStarted = Date.now();
  const { layoutDir, tag } = await debianBookwormImage();
  console.log(`first call: ${Date.now() - firstStarted} ms`);
  await validateLayout(layoutDir);

  const layout = await OciLayout.open(layoutDir, { create: false });
  const entry = (await layout.readIndex()).manifests.find((m) => m.annotations?.[RefNameAnnotation] === tag);
  assert.ok(entry, `index.json lists ${tag}`);
  const manifest = await layout.readJson<Manifest>(entry.digest);
  assert.equal(manifest.layers.length, 1);
  assert.equal(manifest.layers[0].mediaType, MediaType.LayerGzip);
  const config = await layout.readJson<ImageConfig>(manifest.config.digest);
  assert.deepEqual(config.config?.Cmd, ['bash']);
  assert.ok(config.config?.Env?.some((e) => e.startsWith('PATH=') && e.includes('/usr/bin')));

  // Read the layer with GNU tar, independently of our own reader.
  const { stdout: listing } = await execFileAsync('tar', ['-tzf', layout.path(manifest.layers[0].digest)], { maxBuffer: 256 * 1024 * 1024 });
  const names = new Set(listing.split('\n').map((name) => name.replace(/^\.?\//, '').replace(/\/$/, '')));
  for (const name of ['etc/debian_version', 'usr/bin/bash', 'usr/bin/apt-get', 'dev', 'proc']) assert.ok(names.has(name), `layer has ${name}`);
  const { stdout: version } = await execFileAsync('tar', ['-xzOf', layout.path(manifest.layers[0].digest), 'etc/debian_version']);
  assert.match(version, /^12\.\d+/);

  // A second call only reads the cache.
  const started = Date.now();
  assert.deepEqual(await debianBookwormImage(), { layoutDir, tag });
  console.log(`cached call: ${Date.now() - started} ms`);
});
