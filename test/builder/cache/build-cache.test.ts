import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildForTest, type TestBuildOptions } from '../../support/build-for-test.js';
import { LocalCacheStore } from '../../../builder/cache/local-store.js';
import { chrootAvailable } from '../../../builder/isolation/chroot.js';
import type { BuildEvent } from '../../../builder/progress.js';
import type { HistoryEntry, ImageConfig } from '../../../layers/types.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { requires } from '../../support/requirement.js';
import { validateLayout } from '../../support/validate-layout.js';

const canRun = process.getuid?.() === 0 && (await chrootAvailable());

interface StepReport {
  readonly name: string;
  readonly cached: boolean;
  readonly summary: string;
}

describe('the build cache', { skip: requires(canRun ? false : 'needs root for RUN steps') }, () => {
  let work: string;
  let cacheDir: string;
  let baseA: string;
  let baseB: string;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-cache-'));
    cacheDir = path.join(work, 'cache');
    baseA = path.join(work, 'base-a');
    baseB = path.join(work, 'base-b');
    await writeBusyboxImage(baseA);
    // A second base, built on the first, with other content: its manifest digest differs.
    const other = path.join(work, 'base-b-context');
    await mkdir(other);
    await writeFile(path.join(other, 'Dockerfile'), 'FROM busybox\nLABEL variant=b\nRUN echo b > /variant\n');
    await buildForTest({ context: other, outputs: [{ type: 'oci', dest: baseB, tar: false }], tags: ['latest'], buildContexts: [`busybox=oci-layout://${baseA}`], isolation: 'chroot', cacheDir: path.join(work, 'unrelated-cache') });
  });

  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  async function context(name: string, files: Record<string, string>): Promise<string> {
    const dir = path.join(work, name);
    await mkdir(dir, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), text);
    }
    return dir;
  }

  /** Builds and returns each non-metadata step's cache outcome, plus the image digest. */
  async function buildReporting(dir: string, extra: Partial<TestBuildOptions> = {}, base = baseA): Promise<{ steps: StepReport[]; digest: string; dest: string }> {
    const names = new Map<number, string>();
    const steps: StepReport[] = [];
    const progress = (event: BuildEvent): void => {
      if (event.kind === 'step-start') names.set(event.step, event.name.replace(/^\[[^\]]*\] /, ''));
      if (event.kind === 'step-cache') steps.push({ name: names.get(event.step)!, cached: event.cached, summary: event.summary });
    };
    const dest = path.join(work, `out-${Math.random().toString(36).slice(2)}`);
    const result = await buildForTest({
      context: dir,
      outputs: [{ type: 'oci', dest, tar: false }],
      buildContexts: [`busybox=oci-layout://${base}`],
      isolation: 'chroot',
      cacheDir,
      sourceDateEpoch: 1_700_000_000,
      progress,
      ...extra,
    });
    return { steps, digest: result.descriptor.digest, dest };
  }

  /** The config of the single image in an OCI layout. */
  async function imageConfig(layout: string): Promise<ImageConfig & { history: HistoryEntry[] }> {
    await validateLayout(layout);
    const blob = async (digest: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path.join(layout, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as Record<string, unknown>;
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = (await blob(index.manifests[0]!.digest)) as { config: { digest: string } };
    return (await blob(manifest.config.digest)) as unknown as ImageConfig & { history: HistoryEntry[] };
  }

  test('a second build of the same input reuses every step and gives the same image', async () => {
    const dir = await context('same', {
      Dockerfile: 'FROM busybox\nCOPY app.txt /app/\nRUN date +%s%N > /app/built-at\nWORKDIR /srv\n',
      'app.txt': 'v1\n',
    });
    const first = await buildReporting(dir);
    assert.deepEqual(first.steps.map((s) => s.cached), [false, false, false]);
    assert.equal(first.steps[0]!.summary, 'first build of this step');
    const second = await buildReporting(dir);
    assert.deepEqual(second.steps.map((s) => s.cached), [true, true, true]);
    assert.equal(second.digest, first.digest, 'the RUN did not run again: its output is the cached one');
  });

  test('without SOURCE_DATE_EPOCH, a fully cached rebuild gives the same image: times come from the cached steps', async () => {
    const dir = await context('same-times', {
      Dockerfile: 'FROM busybox\nARG V=1\nCOPY app.txt /app/\nENV E=$V\nRUN echo $E > /app/e\nLABEL l=x\n',
      'app.txt': 'v1\n',
    });
    const first = await buildReporting(dir, { sourceDateEpoch: undefined });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = await buildReporting(dir, { sourceDateEpoch: undefined });
    assert.deepEqual(second.steps.map((s) => s.cached), [true, true]);
    assert.equal(second.digest, first.digest);
    const config = await imageConfig(first.dest);
    const times = config.history.map((h) => h.created);
    const [base, arg, copy, env, run, label] = times;
    assert.equal(base, new Date(1700000000 * 1000).toISOString(), 'the base image keeps its own times');
    // As in BuildKit: a config-only step takes the time of the first new layer before any layer,
    // and of the layer before it after that; the image is as old as its last entry.
    assert.ok(copy !== undefined && run !== undefined && copy <= run);
    assert.deepEqual([arg, env, label], [copy, copy, run]);
    assert.equal(config.created, run);
  });

  test('an ARG change misses from the step that uses it, and says which ARG', async () => {
    const dir = await context('arg', {
      Dockerfile: 'FROM busybox\nCOPY a.txt /\nARG VERSION=1\nRUN echo "$VERSION" > /version\nRUN echo after > /after\n',
      'a.txt': 'a\n',
    });
    await buildReporting(dir);
    const changed = await buildReporting(dir, { buildArgs: new Map([['VERSION', '2']]) });
    assert.deepEqual(changed.steps.map((s) => s.cached), [true, false, false]);
    assert.equal(changed.steps[1]!.summary, 'ARG VERSION changed ("1" → "2")');
    assert.match(changed.steps[2]!.summary, /^parent step missed/);
  });

  test('mtime changes do not miss; a content change names the file', async () => {
    const dir = await context('files', { Dockerfile: 'FROM busybox\nCOPY src/ /src/\n', 'src/a.txt': 'a\n', 'src/b.txt': 'b\n' });
    await buildReporting(dir);
    await utimes(path.join(dir, 'src/a.txt'), new Date(0), new Date(0));
    assert.deepEqual((await buildReporting(dir)).steps.map((s) => s.cached), [true]);
    await writeFile(path.join(dir, 'src/b.txt'), 'B\n');
    const changed = await buildReporting(dir);
    assert.equal(changed.steps[0]!.cached, false);
    assert.match(changed.steps[0]!.summary, /^file b\.txt changed/);
  });

  test('COPY --from a stage misses only when the copied files change', async () => {
    const dockerfile = (unrelated: string, copied: string): string =>
      `FROM busybox AS builder\nRUN echo ${unrelated} > /unrelated && echo ${copied} > /artifact\nFROM busybox\nCOPY --from=builder /artifact /artifact\n`;
    const dir = await context('from-stage', { Dockerfile: dockerfile('u1', 'c1') });
    await buildReporting(dir);
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile('u2', 'c1'));
    const unrelated = await buildReporting(dir);
    assert.deepEqual(unrelated.steps.map((s) => [s.name.split(' ')[0], s.cached]), [['RUN', false], ['COPY', true]]);
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile('u2', 'c2'));
    const copied = await buildReporting(dir);
    assert.deepEqual(copied.steps.map((s) => s.cached), [false, false]);
    assert.match(copied.steps[1]!.summary, /^file artifact changed/);
  });

  test('the change matrix: each change misses exactly the steps that see it', async () => {
    const dir = await context('matrix', {
      Dockerfile: 'FROM busybox\nCOPY src/ /src/\nRUN cat /src/a.txt > /a-copy\nARG USED=1\nRUN echo "$USED" > /used\nARG LATER=1\nRUN echo later > /later\n',
      '.dockerignore': 'src/ignored.txt\n',
      'src/a.txt': 'aaaa\n',
      'src/b.txt': 'b\n',
    });
    const hits = async (extra: Partial<TestBuildOptions> = {}): Promise<boolean[]> => (await buildReporting(dir, extra)).steps.map((s) => s.cached);
    const all = [true, true, true, true];
    const none = [false, false, false, false];
    await hits();
    assert.deepEqual(await hits(), all, 'nothing changed');

    const a = path.join(dir, 'src/a.txt');
    const { atime, mtime } = await stat(a);
    await writeFile(a, 'AAAA\n');
    await utimes(a, atime, mtime);
    assert.deepEqual(await hits(), none, 'a same-size, same-mtime rewrite');
    await chmod(path.join(dir, 'src/b.txt'), 0o600);
    assert.deepEqual(await hits(), none, 'a file mode');
    await rename(path.join(dir, 'src/b.txt'), path.join(dir, 'src/c.txt'));
    assert.deepEqual(await hits(), none, 'a file name');
    await writeFile(path.join(dir, 'src/ignored.txt'), 'not in the context\n');
    assert.deepEqual(await hits(), all, 'an ignored file');
    assert.deepEqual(await hits({ buildArgs: new Map([['USED', '2']]) }), [true, true, false, false], 'an ARG the third step sees');
    assert.deepEqual(await hits({ buildArgs: new Map([['USED', '2'], ['LATER', '2']]) }), [true, true, true, false], 'an ARG only the last step sees');
    assert.deepEqual(await hits({ buildArgs: new Map([['USED', '2'], ['LATER', '2'], ['UNDECLARED', 'x']]) }), all, 'a build-arg no ARG declares');
    assert.deepEqual(await hits({ buildArgs: new Map([['USED', '2'], ['LATER', '2']]), noCache: true }), none, '--no-cache');
  });

  test('a new base digest invalidates every step above it', async () => {
    const dir = await context('base', { Dockerfile: 'FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n' });
    await buildReporting(dir);
    const moved = await buildReporting(dir, {}, baseB);
    assert.deepEqual(moved.steps.map((s) => s.cached), [false, false]);
    assert.match(moved.steps[0]!.summary, /^base image changed \(sha256:/);
  });

  test('--no-cache runs everything; --no-cache-filter only the named stage', async () => {
    const dir = await context('no-cache', { Dockerfile: 'FROM busybox AS one\nRUN echo 1 > /1\nFROM one AS two\nRUN echo 2 > /2\n' });
    await buildReporting(dir);
    assert.deepEqual((await buildReporting(dir, { noCache: true })).steps.map((s) => s.cached), [false, false]);
    assert.deepEqual((await buildReporting(dir, { noCacheFilter: ['two'] })).steps.map((s) => s.cached), [true, false]);
  });

  test('the cache is bounded by --cache-max-size, least recently used first', async () => {
    const dir = await context('bounded', { Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/urandom > /big\n' });
    const bounded = path.join(work, 'bounded-cache');
    await buildReporting(dir, { cacheDir: bounded });
    const store = await LocalCacheStore.open(bounded);
    try {
      assert.ok((await store.usage()).bytes > 200_000);
    } finally {
      await store.release();
    }
    await buildReporting(dir, { cacheDir: bounded, noCache: true, cacheMaxBytes: 100_000 });
    const after = await LocalCacheStore.open(bounded);
    try {
      assert.ok((await after.usage()).bytes <= 100_000);
    } finally {
      await after.release();
    }
  });

  test('prune empties the cache', async () => {
    const pruned = path.join(work, 'pruned-cache');
    const dir = await context('prune', { Dockerfile: 'FROM busybox\nRUN echo x > /x\n' });
    await buildReporting(dir, { cacheDir: pruned });
    const store = await LocalCacheStore.open(pruned);
    try {
      assert.ok((await store.prune()).records > 0);
      assert.equal((await store.usage()).records, 0);
      assert.deepEqual(await readdir(path.join(pruned, 'records')), []);
    } finally {
      await store.release();
    }
    assert.deepEqual((await buildReporting(dir, { cacheDir: pruned })).steps.map((s) => s.cached), [false]);
  });
});
