/**
 * Plans 320 generated hostile Dockerfiles (from a fixed seed) through the CLI's `plan` command: each must
 * succeed or fail with one clean error line (no internal error, no stack trace) within 5 s.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { hostPlatform } from '../../builder/plan/platform.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type ImageConfig, type Manifest } from '../../layers/types.js';
import { contextNames, dockerfile, Random } from './dockerfile-generator.js';
import type { FuzzJob, FuzzMessage } from './fuzz-plan-worker.js';

// Another seed or more cases explore further: FUZZ_SEED=7 FUZZ_CASES=3000 node --test dist/test/security/fuzz-plan.test.js
const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const CASES = Number(process.env.FUZZ_CASES ?? 320);
const LIMIT_MS = 5000;

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-fuzz-plan-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Outcome {
  readonly index: number;
  readonly problem?: string;
  readonly ms: number;
  /** The plan succeeded. */
  readonly planned?: boolean;
}

/** Runs every file in a worker, replacing the worker when a case hangs or crashes it. */
async function planAll(files: readonly string[], args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const workerFile = fileURLToPath(new URL('./fuzz-plan-worker.js', import.meta.url));
  let next = 0;
  while (next < files.length) {
    next = await new Promise<number>((resolve) => {
      const worker = new Worker(workerFile, { workerData: { files, first: next, args, env } satisfies FuzzJob });
      let current = next;
      let started = Date.now();
      let timer: NodeJS.Timeout | undefined;
      const abandon = (problem: string): void => {
        clearTimeout(timer);
        outcomes.push({ index: current, problem, ms: Date.now() - started });
        worker.removeAllListeners();
        void worker.terminate();
        resolve(current + 1);
      };
      worker.on('message', (message: FuzzMessage) => {
        if (message.kind === 'start') {
          current = message.index;
          started = Date.now();
          timer = setTimeout(() => abandon(`still running after ${LIMIT_MS} ms`), LIMIT_MS);
          return;
        }
        clearTimeout(timer);
        outcomes.push({ index: message.index, ms: Date.now() - started, planned: message.code === 0, ...problemOf(message) });
      });
      worker.on('error', (err) => abandon(`crashed: ${err.stack ?? String(err)}`));
      worker.on('exit', () => resolve(files.length));
    });
  }
  return outcomes;
}

/** An image with no layers, an environment and a label, as an OCI layout. */
async function writeEmptyImage(dir: string): Promise<void> {
  const layout = await OciLayout.open(dir, { create: true });
  const config: ImageConfig = { ...hostPlatform(), rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin', 'A=from-base'], Labels: { base: 'yes' }, OnBuild: ['LABEL triggered=yes'] } };
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: await layout.writeJson(config, MediaType.ImageConfig), layers: [] };
  await layout.addImage(await layout.writeJson(manifest, MediaType.ImageManifest), ['latest']);
}

/** What is wrong with a finished case, if anything. */
function problemOf(result: Extract<FuzzMessage, { kind: 'done' }>): { problem?: string } {
  if (result.code === 0) return result.stderr === '' ? {} : { problem: `succeeded with output on stderr: ${result.stderr}` };
  const lines = result.stderr.split('\n');
  if (lines.length !== 1 || !lines[0]!.startsWith('error: ')) return { problem: `exit ${result.code} without one error line: ${result.stderr.slice(0, 2000)}` };
  if (/internal error/.test(lines[0]!)) return { problem: lines[0]!.slice(0, 2000) };
  if (lines[0]!.length > 2000) return { problem: `an error line of ${lines[0]!.length} characters` };
  return {};
}

test(`${CASES} generated Dockerfiles plan or fail cleanly, each within ${LIMIT_MS / 1000} s`, { timeout: 600_000 }, async (t) => {
  const random = new Random(SEED);
  const context = path.join(work, 'context');
  await mkdir(context);
  await writeFile(path.join(context, 'file'), 'content');
  const files: string[] = [];
  for (let i = 0; i < CASES; i++) {
    const file = path.join(work, `case-${String(i).padStart(4, '0')}.Dockerfile`);
    await writeFile(file, dockerfile(random));
    files.push(file);
  }
  const base = path.join(work, 'base');
  await writeEmptyImage(base);
  const contexts = contextNames.map((name) => (name === 'base' ? `base=oci-layout://${base}` : `${name}=${context}`));
  const args = [...contexts.flatMap((value) => ['--build-context', value]), '--build-arg', 'A=scratch', context];
  const env = { TSBUILD_CACHE_DIR: path.join(work, 'cache'), TSBUILD_STORE: path.join(work, 'store'), HOME: work };
  const outcomes = await planAll(files, args, env);
  const planned = outcomes.filter((o) => o.problem === undefined && o.planned).length;
  const slowest = outcomes.reduce((a, b) => (b.ms > a.ms ? b : a));
  t.diagnostic(`${planned} planned, ${outcomes.length - planned} failed; slowest: ${path.basename(files[slowest.index]!)}, ${slowest.ms} ms`);
  assert.equal(outcomes.length, CASES);
  const failures = outcomes.filter((o) => o.problem !== undefined);
  const report = failures.map((o) => `${path.basename(files[o.index]!)} (${o.ms} ms): ${o.problem}`).join('\n');
  assert.equal(failures.length, 0, `${failures.length} of ${CASES} cases crashed or hung:\n${report}`);
  assert.ok(slowest.ms < LIMIT_MS, `slowest case took ${slowest.ms} ms`);
});
