import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeStepInputs, type StepInputs, type StepKeyInput } from '../../../builder/cache/cache-key.js';
import { contentChecksum } from '../../../builder/cache/content-checksum.js';
import { explainMiss, type MissExplanation } from '../../../builder/cache/explain.js';
import { sha256Digest } from '../../../layers/digest.js';
import { sh } from '../../support/tree-state.js';
import { amd64, copiedEntries, copyStep, runStep } from './copy-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-explain-'));
after(() => rmSync(work, { recursive: true, force: true }));

const dockerfile = '/ctx/Dockerfile';
const parentKey = sha256Digest('parent');
const run = runStep(dockerfile, 5, { env: ['PATH=/usr/bin:/bin', 'VERSION=1'] });
const runBase: StepKeyInput = { parent: { kind: 'step', key: parentKey }, step: run, platform: amd64, argNames: new Set(['VERSION']) };

/** Explains the miss of a step whose inputs went from `before` to `after`, through JSON as a store would keep them. */
function explain(before: StepKeyInput | undefined, after: StepKeyInput): MissExplanation {
  const stored = before && (JSON.parse(JSON.stringify(describeStepInputs(before))) as StepInputs);
  const result = explainMiss(stored, describeStepInputs(after));
  assert.notEqual(result.summary, 'CACHED');
  assert.ok(result.differences.length > 0);
  return result;
}

test('a step seen for the first time', () => {
  assert.deepEqual(explain(undefined, runBase), { summary: 'first build of this step', differences: ['first build of this step'] });
});

test('ARG and ENV values: changed, added and removed, with their values', () => {
  const withEnv = (env: string[]): StepKeyInput => ({ ...runBase, step: { ...run, env } });
  assert.deepEqual(explain(runBase, withEnv(['PATH=/usr/bin:/bin', 'VERSION=2'])), {
    summary: 'ARG VERSION changed ("1" → "2")',
    differences: ['ARG VERSION changed ("1" → "2")'],
  });
  assert.equal(explain(runBase, withEnv(['PATH=/usr/bin:/bin', 'VERSION=1', 'MODE=fast'])).summary, 'ENV MODE added ("fast")');
  assert.equal(explain(runBase, withEnv(['VERSION=1'])).summary, 'ENV PATH removed (was "/usr/bin:/bin")');
  const both = explain(runBase, withEnv(['PATH=/sbin', 'VERSION=3']));
  assert.equal(both.summary, 'ENV PATH changed ("/usr/bin:/bin" → "/sbin") (+1 more)');
  assert.deepEqual(both.differences, ['ENV PATH changed ("/usr/bin:/bin" → "/sbin")', 'ARG VERSION changed ("1" → "3")']);
  const long = explain(runBase, withEnv(['PATH=/usr/bin:/bin', `VERSION=${'x'.repeat(500)}`]));
  assert.ok(long.summary.length < 160, long.summary);
});

test('values of secret-looking names are never shown', () => {
  const secrets = ['GITHUB_TOKEN', 'DB_PASSWORD', 'api_key', 'MY_SECRET_THING', 'SSH_KEY_FILE'];
  const inputs = (value: string): StepKeyInput => ({ ...runBase, step: { ...run, env: secrets.map((n) => `${n}=${value}-${n}`) }, argNames: new Set(['GITHUB_TOKEN']) });
  const result = explain(inputs('old'), inputs('new'));
  assert.deepEqual(result.differences, [
    'ENV DB_PASSWORD changed',
    'ENV MY_SECRET_THING changed',
    'ENV SSH_KEY_FILE changed',
    'ENV api_key changed',
    'ARG GITHUB_TOKEN changed',
  ]);
  const added = explain(runBase, { ...runBase, step: { ...run, env: [...run.env, 'NPM_TOKEN=abc123'] } });
  const removed = explain({ ...runBase, step: { ...run, env: [...run.env, 'NPM_TOKEN=abc123'] } }, runBase);
  assert.deepEqual([added.summary, removed.summary], ['ENV NPM_TOKEN added', 'ENV NPM_TOKEN removed']);
  for (const text of [result.summary, ...result.differences, ...added.differences, ...removed.differences]) {
    assert.doesNotMatch(text, /old-|new-|abc123/, text);
  }
});

test('files of a COPY: one changed, several added under a directory, one removed', async () => {
  const ctx = mkdtempSync(join(work, 'ctx-'));
  sh('mkdir -p src/util; printf "package main\\n" > main.go; printf a > src/a.go', ctx);
  const inputs = async (): Promise<StepKeyInput> => ({
    parent: { kind: 'step', key: parentKey },
    step: copyStep(join(ctx, 'Dockerfile'), 3),
    platform: amd64,
    content: await contentChecksum(await copiedEntries(ctx)),
  });
  const v1 = await inputs();
  sh('printf "package mane\\n" > main.go', ctx);
  const v2 = await inputs();
  assert.deepEqual(explain(v1, v2), { summary: 'file app/main.go changed', differences: ['file app/main.go changed'] });

  sh('printf b > src/b.go; printf c > src/c.go; printf d > src/util/d.go', ctx);
  const v3 = await inputs();
  assert.deepEqual(explain(v2, v3), {
    summary: '3 files added under app/src/',
    differences: ['file app/src/b.go added', 'file app/src/c.go added', 'file app/src/util/d.go added'],
  });

  sh('rm main.go; printf A > src/a.go; chmod 600 src/b.go', ctx);
  const v4 = await inputs();
  const mixed = explain(v3, v4);
  assert.equal(mixed.summary, '2 files changed under app/src/ (+1 more)');
  assert.deepEqual(mixed.differences, ['file app/src/a.go changed', 'file app/src/b.go changed', 'file app/main.go removed']);

  // Copied to `/`: files with no directory in common.
  const atRoot = async (): Promise<StepKeyInput> => ({ ...v4, content: await contentChecksum(await copiedEntries(ctx, { dest: '' })) });
  const r1 = await atRoot();
  sh('printf x > top.txt; printf y > src/util/e.go', ctx);
  assert.equal(explain(r1, await atRoot()).summary, '2 files added');
});

test('what a step builds on: base image, base kind, base stage, parent step, position', () => {
  const a = sha256Digest('image a');
  const b = sha256Digest('image b');
  const first = (parent: StepKeyInput['parent']): StepKeyInput => ({ ...runBase, parent });
  const short = (d: string): string => `${d.slice(0, 19)}…`;
  assert.equal(explain(first({ kind: 'image', digest: a }), first({ kind: 'image', digest: b })).summary, `base image changed (${short(a)} → ${short(b)})`);
  assert.equal(explain(first({ kind: 'scratch' }), first({ kind: 'image', digest: b })).summary, `base changed (scratch → ${short(b)})`);
  assert.equal(explain(first({ kind: 'stage', key: a }), first({ kind: 'stage', key: b })).summary, 'base stage missed');
  assert.equal(explain(first({ kind: 'stage', key: a }), first({ kind: 'image', digest: a })).summary, `base changed (stage ${short(a)} → ${short(a)})`);
  assert.equal(explain(runBase, first({ kind: 'step', key: a })).summary, 'parent step missed');
  assert.equal(explain(first({ kind: 'scratch' }), runBase).summary, 'a step was added before this one');
  assert.equal(explain(runBase, first({ kind: 'scratch' })).summary, 'the step before this one was removed');
  const alsoEnv = explain(runBase, { ...runBase, parent: { kind: 'step', key: a }, step: { ...run, env: ['PATH=/usr/bin:/bin', 'VERSION=2'] } });
  assert.equal(alsoEnv.summary, 'parent step missed (+1 more)');
  assert.deepEqual(alsoEnv.differences, ['parent step missed', 'ARG VERSION changed ("1" → "2")']);
});

test('the instruction and its options', () => {
  const changed = explain(runBase, { ...runBase, step: { ...run, args: ['/bin/sh', '-c', 'make all'], user: 'app' } });
  assert.equal(changed.summary, 'instruction changed');
  assert.deepEqual(changed.differences, ['instruction changed: args ["/bin/sh","-c","make"] → ["/bin/sh","-c","make all"]', 'instruction changed: user null → "app"']);
  const kind = explain(runBase, { ...runBase, step: { kind: 'workdir', location: run.location, createdBy: 'WORKDIR /app', path: '/app' } });
  assert.deepEqual(kind, {
    summary: 'instruction changed (+2 more)',
    differences: ['instruction changed (RUN → WORKDIR)', 'ENV PATH removed (was "/usr/bin:/bin")', 'ARG VERSION removed (was "1")'],
  });
});

test('platform, and inputs that did not change', () => {
  assert.equal(explain(runBase, { ...runBase, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }).summary, 'platform changed (linux/amd64 → linux/arm64/v8)');
  const moved = { ...runBase, step: { ...run, location: { file: '/elsewhere/Dockerfile', startLine: 9, endLine: 9 } } };
  assert.deepEqual(explain(runBase, moved), {
    summary: 'inputs unchanged, but no cached result was found',
    differences: ['inputs unchanged, but no cached result was found'],
  });
});
