import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';
import { tempDir, tsbuild } from './cli-harness.js';

const run = promisify(execFile);
const main = path.join(repoRoot(), 'dist/cli/main.js');
if (!existsSync('/usr/bin/script')) throw new Error('script is missing: install the Debian package util-linux (bsdutils)');

let work: { dir: string; cleanup: () => Promise<void> };
let ctx: string;
before(async () => {
  work = await tempDir('tsbuild-progress');
  ctx = path.join(work.dir, 'ctx');
  await mkdir(ctx);
  const steps = ['FROM scratch AS base', 'COPY small.txt /small.txt', 'ENV MODE=test', 'FROM base', 'COPY big.bin /big.bin', 'COPY medium.bin /medium.bin', 'LABEL x=y', 'COPY small.txt /again.txt', 'WORKDIR /app'];
  await writeFile(path.join(ctx, 'Dockerfile'), `${steps.join('\n')}\n`);
  await writeFile(path.join(ctx, 'small.txt'), 'small\n');
  // Random bytes do not compress: the layer sizes order the steps.
  await writeFile(path.join(ctx, 'big.bin'), randomBytes(400_000));
  await writeFile(path.join(ctx, 'medium.bin'), randomBytes(100_000));
});
after(async () => work.cleanup());

/** Runs tsbuild on a pseudo-terminal (util-linux `script`) and returns what the terminal received. */
async function onTerminal(args: readonly string[], cacheDir: string): Promise<string> {
  const command = [process.execPath, main, ...args].map((word) => `'${word.replace(/'/g, `'\\''`)}'`).join(' ');
  const { stdout } = await run('script', ['-qfec', command, '/dev/null'], { env: { ...process.env, TSBUILD_CACHE_DIR: cacheDir, COLUMNS: '100' } });
  return stdout;
}

describe('--progress on a terminal and off it', () => {
  test('tty redraws the running steps in place and ends with a summary line', async () => {
    const screen = await onTerminal(['--progress=tty', '--no-cache', '-o', `type=oci,dest=${path.join(work.dir, 'tty-out')}`, ctx], path.join(work.dir, 'tty-cache'));
    assert.match(screen, /\[\+\] Building \d+\.\ds \(\d+\/\d+\)/);
    // Cursor up N lines and erase below: the live block is redrawn, not appended.
    assert.match(screen, /\x1b\[\d+F\x1b\[J/);
    assert.match(screen, /=> \[stage-1 1\/5\] COPY big\.bin \/big\.bin\x1b\[0m {2}\d+\.\ds {2}390\.\d KiB/);
    assert.match(screen, /\[\+\] Building \d+\.\ds \(7\/7\) FINISHED/);
    assert.doesNotMatch(screen, /^#\d+ /m, 'no plain lines');
    assert.match(screen, /^sha256:[0-9a-f]{64}\r?$/m);
  });

  test('a failing step is printed with the FAILED summary before the error line', async () => {
    const broken = path.join(work.dir, 'broken');
    await mkdir(broken);
    await writeFile(path.join(broken, 'Dockerfile'), 'FROM scratch\nCOPY missing.txt /\n');
    const screen = await onTerminal(['--progress=tty', broken], path.join(work.dir, 'broken-cache')).catch((err: { stdout: string }) => err.stdout);
    assert.match(screen, /=> \[stage-0 1\/1\] COPY missing\.txt \/\x1b\[0m {2}\d+\.\ds\r?\n\[\+\] Building \d+\.\ds \(0\/1\) FAILED\r?\nerror: /);
  });

  test('auto is the live display on a terminal; tty off a terminal falls back to plain lines', async () => {
    const auto = await onTerminal(['-o', `type=oci,dest=${path.join(work.dir, 'auto-out')}`, ctx], path.join(work.dir, 'auto-cache'));
    assert.match(auto, /\[\+\] Building .* FINISHED/);
    const piped = await run(process.execPath, [main, '--progress=tty', '-o', `type=oci,dest=${path.join(work.dir, 'piped-out')}`, ctx], { env: { ...process.env, TSBUILD_CACHE_DIR: path.join(work.dir, 'piped-cache') } });
    assert.match(piped.stderr, /^#1 \[base 1\/2\] COPY small\.txt \/small\.txt$/m);
    assert.doesNotMatch(piped.stderr, /\x1b\[/);
  });
});

describe('the layer report', () => {
  test('--report=json lists every step, heaviest first, with cache state, time and layer size', async () => {
    const cacheDir = path.join(work.dir, 'report-cache');
    const build = () => tsbuild(['--progress', 'plain', '--report', 'json', '--cache-dir', cacheDir, '-o', `type=oci,dest=${path.join(work.dir, 'report-out')}`, ctx]);
    const first = await build();
    assert.equal(first.code, 0, first.stderr);
    await validateLayout(path.join(work.dir, 'report-out'));
    const report = JSON.parse(first.stderr.split('\n').at(-1)!);
    assert.equal(report.kind, 'report');
    assert.equal(report.steps.length, 7);
    assert.deepEqual(report.steps.slice(0, 2).map((s: { name: string }) => s.name), ['[stage-1 1/5] COPY big.bin /big.bin', '[stage-1 2/5] COPY medium.bin /medium.bin']);
    const sizes = report.steps.map((s: { layerBytes: number }) => s.layerBytes);
    assert.deepEqual(sizes, [...sizes].sort((a: number, b: number) => b - a));
    assert.ok(sizes[0] > 400_000 && sizes[1] > 100_000 && sizes[1] < sizes[0], String(sizes));
    assert.equal(report.totalBytes, sizes.reduce((a: number, b: number) => a + b, 0));
    const state = (name: string) => report.steps.find((s: { name: string }) => s.name.endsWith(name)).cache;
    assert.equal(state('COPY big.bin /big.bin'), 'built');
    assert.equal(state('ENV MODE=test'), 'metadata');
    assert.equal(report.cachedSteps, 0);
    const second = JSON.parse((await build()).stderr.split('\n').at(-1)!);
    assert.equal(second.cachedSteps, 5);
    assert.equal(second.steps.find((s: { name: string }) => s.name.endsWith('COPY big.bin /big.bin')).cache, 'cached');
    assert.equal(second.totalBytes, report.totalBytes);
  });

  test('by default a short report on stderr names the five heaviest steps; --report=none and -q print none', async () => {
    const out = ['-o', `type=oci,dest=${path.join(work.dir, 'short-out')}`, '--cache-dir', path.join(work.dir, 'short-cache')];
    const short = await tsbuild(['--progress', 'plain', ...out, ctx]);
    assert.equal(short.code, 0, short.stderr);
    const lines = short.stderr.split('\n');
    const start = lines.findIndex((l) => l.startsWith('layer report: 7 steps, '));
    assert.ok(start > 0, short.stderr);
    assert.match(lines[start + 1]!, /^ +390\.\d KiB +\d+\.\ds +(built|cached) +#\d+ \[stage-1 1\/5\] COPY big\.bin \/big\.bin$/);
    assert.equal(lines.length, start + 7);
    assert.match(lines[start + 6]!, /\(2 lighter steps left out: --report=full lists every step\)/);
    assert.match(short.stdout, /^sha256:[0-9a-f]{64}$/);
    const full = await tsbuild(['--progress', 'plain', '--report', 'full', ...out, ctx]);
    assert.equal(full.stderr.split('\n').length - full.stderr.split('\n').findIndex((l) => l.startsWith('layer report:')), 8);
    const json = await tsbuild(['--progress', 'json', ...out, ctx]);
    const events = json.stderr.split('\n').map((line) => JSON.parse(line) as { kind: string });
    assert.equal(events.at(-1)!.kind, 'report', 'with --progress=json the report is a JSON line too');
    for (const flags of [['--report', 'none'], ['-q']]) {
      const quiet = await tsbuild(['--progress', 'plain', ...flags, ...out, ctx]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.doesNotMatch(quiet.stderr, /layer report/);
    }
  });
});
