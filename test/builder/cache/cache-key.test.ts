import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CACHE_KEY_VERSION, cacheKey, describeStepInputs, type StepKeyInput } from '../../../builder/cache/cache-key.js';
import { contentChecksum } from '../../../builder/cache/content-checksum.js';
import { sha256Digest } from '../../../layers/digest.js';
import type { Digest } from '../../../layers/types.js';
import type { RunMount } from '../../../builder/model/mounts.js';
import { sh } from '../../support/tree-state.js';
import { amd64, copiedEntries, copyStep, runStep } from './copy-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-cache-key-'));
after(() => rmSync(work, { recursive: true, force: true }));

const imageA = sha256Digest('image a');
const imageB = sha256Digest('image b');
const stepKey = sha256Digest('some earlier step');

/** A RUN key input; `reversed` builds every object in it with its keys in the opposite order. */
function runInput(reversed: boolean): StepKeyInput {
  const input: StepKeyInput = {
    parent: { kind: 'image', digest: imageA },
    step: runStep('/ctx/Dockerfile', 3, {
      env: ['A=1', 'B=2'],
      user: 'app',
      heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, chomp: false, fileDescriptor: 0 }],
    }),
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
  };
  return reversed ? (reverseKeys(input) as StepKeyInput) : input;
}

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]));
}

test('a key is the SHA-256 of versioned canonical JSON, the same whatever order its inputs were built in', () => {
  const key = cacheKey(runInput(false));
  assert.match(key, /^sha256:[0-9a-f]{64}$/);
  assert.notDeepEqual(Object.keys(runInput(true).step), Object.keys(runInput(false).step));
  assert.equal(cacheKey(runInput(true)), key);
  assert.equal(cacheKey(runInput(false)), key, 'computing it again gives the same key');
  assert.equal(CACHE_KEY_VERSION, 1);
  assert.equal(describeStepInputs(runInput(false))['version'], String(CACHE_KEY_VERSION));
});

test('a key is the same in another process', () => {
  const input = runInput(true);
  const module = new URL('../../../builder/cache/cache-key.js', import.meta.url).href;
  const script = `import { cacheKey } from ${JSON.stringify(module)}; process.stdout.write(cacheKey(JSON.parse(process.argv[1])));`;
  const other = execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(input)]).toString();
  assert.equal(other, cacheKey(runInput(false)));
});

test('every input a RUN, WORKDIR or base covers changes the key', () => {
  const run = runStep('/ctx/Dockerfile', 3);
  const cacheMount: RunMount = { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared', readonly: false, mode: 0o755, uid: 0, gid: 0 };
  const base: StepKeyInput = { parent: { kind: 'step', key: stepKey }, step: run, platform: amd64 };
  const variants: [string, StepKeyInput][] = [
    ['base', base],
    ['parent scratch', { ...base, parent: { kind: 'scratch' } }],
    ['parent image', { ...base, parent: { kind: 'image', digest: imageA } }],
    ['parent other image', { ...base, parent: { kind: 'image', digest: imageB } }],
    ['parent stage with the same digest', { ...base, parent: { kind: 'stage', key: stepKey } }],
    ['parent other step', { ...base, parent: { kind: 'step', key: imageA } }],
    ['platform arch', { ...base, platform: { os: 'linux', architecture: 'arm64' } }],
    ['platform variant', { ...base, platform: { os: 'linux', architecture: 'amd64', variant: 'v3' } }],
    ['platform os', { ...base, platform: { os: 'windows', architecture: 'amd64' } }],
    ['platform os.version', { ...base, platform: { ...amd64, 'os.version': '10.0' } }],
    ['args', { ...base, step: { ...run, args: ['/bin/sh', '-c', 'make all'] } }],
    ['exec form', { ...base, step: { ...run, shellForm: false } }],
    ['heredoc', { ...base, step: { ...run, heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, chomp: false, fileDescriptor: 0 }] } }],
    ['heredoc body', { ...base, step: { ...run, heredocs: [{ name: 'EOF', content: 'echo ho\n', expand: true, chomp: false, fileDescriptor: 0 }] } }],
    ['user', { ...base, step: { ...run, user: 'app' } }],
    ['workdir', { ...base, step: { ...run, workdir: '/src' } }],
    ['network', { ...base, step: { ...run, network: 'none' } }],
    ['security', { ...base, step: { ...run, security: 'insecure' } }],
    ['mounts', { ...base, step: { ...run, mounts: [cacheMount] } }],
    ['mount option', { ...base, step: { ...run, mounts: [{ ...cacheMount, sharing: 'locked' }] } }],
    ['mount content', { ...base, step: { ...run, mounts: [cacheMount] }, content: { digest: imageA, files: new Map() } }],
    ['env value', { ...base, step: { ...run, env: ['PATH=/usr/bin:/bin', 'VERSION=2'] } }],
    ['env added', { ...base, step: { ...run, env: [...run.env, 'EXTRA=1'] } }],
    ['env removed', { ...base, step: { ...run, env: ['PATH=/usr/bin:/bin'] } }],
    ['env empty value', { ...base, step: { ...run, env: ['PATH=/usr/bin:/bin', 'VERSION='] } }],
    ['workdir step', { ...base, step: { kind: 'workdir', location: run.location, createdBy: 'WORKDIR /app', path: '/app' } }],
    ['workdir step path', { ...base, step: { kind: 'workdir', location: run.location, createdBy: 'WORKDIR /app', path: '/srv' } }],
    ['workdir step user', { ...base, step: { kind: 'workdir', location: run.location, createdBy: 'WORKDIR /app', path: '/app', user: 'app' } }],
  ];
  assertAllDistinct(variants);
});

test('every option of a COPY/ADD and its content checksum changes the key', async () => {
  const dir = mkdtempSync(join(work, 'ctx-'));
  writeFileSync(join(dir, 'a.txt'), 'a');
  const content = await contentChecksum(await copiedEntries(dir));
  writeFileSync(join(dir, 'a.txt'), 'b');
  const otherContent = await contentChecksum(await copiedEntries(dir));
  const copy = copyStep('/ctx/Dockerfile', 4);
  const base: StepKeyInput = { parent: { kind: 'step', key: stepKey }, step: copy, platform: amd64, content };
  const variants: [string, StepKeyInput][] = [
    ['base', base],
    ['content', { ...base, content: otherContent }],
    ['ADD', { ...base, step: { ...copy, instruction: 'ADD' } }],
    ['dest', { ...base, step: { ...copy, dest: '/srv/' } }],
    ['chown', { ...base, step: { ...copy, chown: '1000:1000' } }],
    ['chmod', { ...base, step: { ...copy, chmod: '0755' } }],
    ['link', { ...base, step: { ...copy, link: true } }],
    ['parents', { ...base, step: { ...copy, parents: true } }],
    ['excludes', { ...base, step: { ...copy, excludes: ['*.md'] } }],
    ['checksum', { ...base, step: { ...copy, instruction: 'ADD', checksum: sha256Digest('x') } }],
    ['unpack false', { ...base, step: { ...copy, instruction: 'ADD', unpack: false } }],
    ['unpack true', { ...base, step: { ...copy, instruction: 'ADD', unpack: true } }],
    ['keep-git-dir', { ...base, step: { ...copy, instruction: 'ADD', keepGitDir: true } }],
  ];
  assertAllDistinct(variants);
  assert.throws(() => cacheKey({ ...base, content: undefined }), /needs the checksum of its contents/);
});

test('location, created_by, source paths, --from and ARG labels do not change the key', async () => {
  const dir = mkdtempSync(join(work, 'ctx-'));
  writeFileSync(join(dir, 'a.txt'), 'a');
  const content = await contentChecksum(await copiedEntries(dir));
  const copy = copyStep('/ctx/Dockerfile', 4);
  const base: StepKeyInput = { parent: { kind: 'step', key: stepKey }, step: copy, platform: amd64, content };
  const moved: StepKeyInput = {
    ...base,
    step: { ...copy, location: { file: '/elsewhere/build/Dockerfile.prod', startLine: 40, endLine: 42 }, createdBy: 'COPY ./ /app/', sources: ['./'], from: { kind: 'local-context', name: 'src', dir: '/other/src' } },
  };
  assert.equal(cacheKey(moved), cacheKey(base));
  const run = runStep('/ctx/Dockerfile', 3);
  const runBase: StepKeyInput = { parent: { kind: 'step', key: stepKey }, step: run, platform: amd64 };
  const runMoved: StepKeyInput = { ...runBase, step: { ...run, location: { file: '/x/Dockerfile', startLine: 9, endLine: 12 }, createdBy: 'RUN  make' }, argNames: new Set(['VERSION']) };
  assert.equal(cacheKey(runMoved), cacheKey(runBase));
});

test('a COPY key ignores mtimes, the context directory and the Dockerfile location, and sees content, mode and names', async () => {
  const ctx = mkdtempSync(join(work, 'ctx-'));
  sh('mkdir -p src/lib; printf "package main\\n" > src/main.go; printf "lib" > src/lib/x.go; ln -s main.go src/link; printf "*.log\\n" > .dockerignore; printf "noise" > debug.log', ctx);
  const key = async (dir: string, dockerfile = join(dir, 'Dockerfile'), line = 4): Promise<Digest> =>
    cacheKey({ parent: { kind: 'image', digest: imageA }, step: copyStep(dockerfile, line), platform: amd64, content: await contentChecksum(await copiedEntries(dir)) });
  const first = await key(ctx);

  sh('touch -d "2001-02-03 04:05:06" src/main.go src/lib/x.go src/lib src; touch -h -d "2002-01-01" src/link', ctx);
  assert.equal(await key(ctx), first, 'mtimes changed');

  const copy = mkdtempSync(join(work, 'elsewhere-'));
  sh(`cp -a "${ctx}/." "${copy}/"`, '/');
  sh('touch src/main.go', copy);
  assert.equal(await key(copy, join(work, 'other', 'Dockerfile.ci'), 17), first, 'another context directory and Dockerfile');

  sh('printf "changed" > debug.log; printf "more" > other.log', ctx);
  assert.equal(await key(ctx), first, 'ignored files changed');

  // Same size, and the mtime put back: only the bytes differ.
  const mtime = new Date('2001-02-03T04:05:06Z');
  sh('printf "package mane\\n" > src/main.go', ctx);
  utimesSync(join(ctx, 'src/main.go'), mtime, mtime);
  const rewritten = await key(ctx);
  assert.notEqual(rewritten, first, 'same-size, same-mtime rewrite');

  sh('chmod 600 src/lib/x.go', ctx);
  const chmodded = await key(ctx);
  assert.notEqual(chmodded, rewritten, 'mode');

  sh('mv src/lib/x.go src/lib/y.go', ctx);
  const renamed = await key(ctx);
  assert.notEqual(renamed, chmodded, 'name');
  assert.equal(new Set([first, rewritten, chmodded, renamed]).size, 4);
});

test('the named inputs hold every part of the key', async () => {
  const dir = mkdtempSync(join(work, 'ctx-'));
  sh('mkdir src; printf a > src/a.txt', dir);
  const content = await contentChecksum(await copiedEntries(dir));
  const copyInputs = describeStepInputs({ parent: { kind: 'image', digest: imageA }, step: copyStep(join(dir, 'Dockerfile'), 2, { chown: 'app' }), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, content });
  assert.deepEqual(copyInputs, {
    version: '1',
    base: `image ${imageA}`,
    instruction: 'COPY',
    'step:dest': '"/app/"',
    'step:chown': '"app"',
    'step:chmod': 'null',
    'step:link': 'false',
    'step:parents': 'false',
    'step:excludes': '[]',
    'step:checksum': 'null',
    'step:unpack': 'null',
    platform: 'linux/arm64/v8',
    'file:app': content.files.get('app'),
    'file:app/src': content.files.get('app/src'),
    'file:app/src/a.txt': content.files.get('app/src/a.txt'),
  });
  const runInputs = describeStepInputs({ parent: { kind: 'step', key: stepKey }, step: runStep('/x/Dockerfile', 1, { env: ['PATH=/bin', 'VERSION=2'] }), platform: amd64, argNames: new Set(['VERSION']) });
  assert.equal(runInputs['parent'], stepKey);
  assert.equal(runInputs['base'], undefined);
  assert.equal(runInputs['env:PATH'], '/bin');
  assert.equal(runInputs['arg:VERSION'], '2');
  assert.equal(runInputs['env:VERSION'], undefined);
  assert.equal(runInputs['step:args'], '["/bin/sh","-c","make"]');
  assert.equal(describeStepInputs({ parent: { kind: 'scratch' }, step: runStep('/x/Dockerfile', 1), platform: amd64 })['base'], 'scratch');
  assert.equal(describeStepInputs({ parent: { kind: 'stage', key: stepKey }, step: runStep('/x/Dockerfile', 1), platform: amd64 })['base'], `stage ${stepKey}`);
});

function assertAllDistinct(variants: [string, StepKeyInput][]): void {
  const seen = new Map<string, string>();
  for (const [name, input] of variants) {
    const key = cacheKey(input);
    assert.equal(seen.get(key), undefined, `${name} has the same key as ${seen.get(key)}`);
    seen.set(key, name);
  }
  assert.equal(seen.size, variants.length);
}
