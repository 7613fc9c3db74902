/**
 * A registry base image is fetched lazily: planning reads its manifest and config only, a build
 * whose steps need the base filesystem fetches its layers, and a rebuild fully served from the
 * caches fetches nothing. Blob requests are counted by a proxy in front of a real registry.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { readLayoutImage } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import type { Digest } from '../../layers/types.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { requires } from '../support/requirement.js';
import { validateLayout } from '../support/validate-layout.js';
import { tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const canRun = process.getuid?.() === 0 && (await findOciRuntime()) !== undefined;

describe('fetching a registry base image', { skip: requires(canRun ? false : 'needs root and runc') }, () => {
  let work: string;
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let context: string;
  let configDigest: Digest;
  let layerDigests: Digest[];

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-base-fetch-'));
    registry = await startRegistry();
    const base = path.join(work, 'busybox');
    await writeBusyboxImage(base);
    await run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${base}:latest`, `docker://${registry.host}/library/busybox:1`]);
    const manifest = await (await readLayoutImage(await OciLayout.open(base, { create: false }), { tag: 'latest' }, { os: 'linux', architecture: 'amd64' })).manifest();
    configDigest = manifest.config.digest;
    layerDigests = manifest.layers.map((layer) => layer.digest);
    proxy = await startFaultProxy(registry.host);
    context = path.join(work, 'context');
    await mkdir(context);
    await writeFile(path.join(context, 'Dockerfile'), `FROM ${proxy.host}/library/busybox:1\nRUN echo built > /marker\n`);
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  /** The digests of the blobs fetched with GET while `action` ran. */
  async function blobGets(action: () => Promise<void>): Promise<Digest[]> {
    const start = proxy.seen.length;
    await action();
    return proxy.seen.slice(start).flatMap((r) => {
      const match = r.method === 'GET' ? /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(r.path) : null;
      return match ? [match[1] as Digest] : [];
    });
  }

  function env(cache: string): NodeJS.ProcessEnv {
    return { SOURCE_DATE_EPOCH: '1700000000', TSBUILD_CACHE_DIR: path.join(work, cache) };
  }

  test('tsbuild plan fetches the config and no layer blob', async () => {
    const fetched = await blobGets(async () => {
      const result = await tsbuild(['plan', context], env('plan-cache'));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /"manifestDigest": "sha256:[0-9a-f]{64}"/);
    });
    assert.deepEqual(fetched, [configDigest]);
  });

  test('a cold build fetches every layer once; a rebuild served from the caches fetches no blob', async () => {
    const build = (dest: string) => async (): Promise<void> => {
      const result = await tsbuild(['-o', `type=oci,dest=${path.join(work, dest)}`, '--progress', 'plain', context], env('build-cache'));
      assert.equal(result.code, 0, result.stderr);
    };
    const cold = await blobGets(build('cold-out'));
    assert.deepEqual([...cold].sort(), [configDigest, ...layerDigests].sort());

    const cached = await blobGets(build('cached-out'));
    assert.deepEqual(cached, []);
    await validateLayout(path.join(work, 'cached-out'));
  });

  test('a rebuild served from the step cache and pushed to the base registry fetches no layer, even with no image cache', async () => {
    const steps = ['--cache-dir', path.join(work, 'steps')];
    const first = await tsbuild([...steps, '-o', `type=oci,dest=${path.join(work, 'first-out')}`, context], env('first-cache'));
    assert.equal(first.code, 0, first.stderr);
    const fetched = await blobGets(async () => {
      const result = await tsbuild([...steps, '-t', `${proxy.host}/team/app:1`, '--push', '--progress', 'plain', context], env('empty-image-cache'));
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /CACHED/);
      assert.match(result.stderr, /mounted/);
    });
    assert.deepEqual(fetched, [configDigest], 'the base config is read for planning; its layers are mounted, not downloaded');
  });
});
