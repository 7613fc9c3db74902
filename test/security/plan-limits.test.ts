/**
 * Dockerfiles built to exhaust the planner: long stage chains, many metadata instructions, words
 * that grow on every line, deep nesting and patterns that backtrack. Each must plan, or fail with
 * one clean line at its Dockerfile line. The time bound is a guard against blow-ups (quadratic or
 * worse growth takes minutes on these sizes), not a benchmark: it is loose enough for a loaded machine.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanErrorLine, runCli, type ProcessResult } from './cli-process.js';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-plan-limits-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const LIMIT_MS = 20_000;

async function plan(name: string, lines: readonly string[]): Promise<ProcessResult> {
  const file = path.join(work, `${name}.Dockerfile`);
  await writeFile(file, `${lines.join('\n')}\n`);
  const result = await runCli(['plan', '-f', file, work], { TSBUILD_CACHE_DIR: path.join(work, 'cache') }, 3 * LIMIT_MS);
  assert.equal(result.signal, null, `killed after ${result.ms} ms`);
  assert.ok(result.ms < LIMIT_MS, `took ${result.ms} ms`);
  return result;
}

function assertPlans(result: ProcessResult): void {
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotThrow(() => JSON.parse(result.stdout));
}

function assertFails(result: ProcessResult, name: string, line: number, message: RegExp): void {
  assert.equal(result.code, 3, `a Dockerfile error: ${result.stderr}`);
  const error = cleanErrorLine(result.stderr);
  assert.ok(error, `not one clean error line:\n${result.stderr.slice(0, 2000)}`);
  assert.ok(error.includes(`${name}.Dockerfile:${line}: `), error);
  assert.match(error, message);
  assert.ok(error.length < 1100, `an error line of ${error.length} characters`);
}

const count = 10_000;

describe('planning hostile Dockerfiles', () => {
  test(`a chain of ${count} FROM stages`, async () => {
    const lines = ['FROM scratch AS s0'];
    for (let i = 1; i < count; i++) lines.push(`FROM s${i - 1} AS s${i}`);
    const result = await plan('from-chain', lines);
    assertPlans(result);
    assert.equal(JSON.parse(result.stdout).platforms[0].stages.length, count);
  });

  test(`a chain of ${count} COPY --from stages`, async () => {
    const lines = ['FROM scratch AS s0'];
    for (let i = 1; i < count; i++) lines.push(`FROM scratch AS s${i}`, `COPY --from=s${i - 1} /a /a`);
    const result = await plan('copy-chain', lines);
    assertPlans(result);
    assert.equal(JSON.parse(result.stdout).platforms[0].stages.length, count);
  });

  test(`${count} LABELs, ENVs and EXPOSEs each`, async () => {
    const lines = ['FROM scratch'];
    for (let i = 0; i < count; i++) lines.push(`LABEL l${i}=v${i}`, `ENV E${i}=v${i}`, `EXPOSE ${1 + i}`);
    const result = await plan('metadata', lines);
    assertPlans(result);
    const config = JSON.parse(result.stdout).platforms[0].stages[0].config;
    assert.equal(Object.keys(config.Labels).length, count);
    assert.equal(config.Env.length, count + 1);
    assert.equal(Object.keys(config.ExposedPorts).length, count);
  });

  test('an ARG that doubles on each line stops at 1 MiB', async () => {
    const lines = ['FROM scratch', 'ARG A0=xy'];
    for (let i = 1; i < 40; i++) lines.push(`ARG A${i}=\${A${i - 1}}\${A${i - 1}}`);
    // A19 is exactly 1 MiB long; A20, on line 22, is the first word over the limit.
    assertFails(await plan('doubling', lines), 'doubling', 22, /expanded word is longer than 1 MiB/);
  });

  test('many words of 1 MiB stop at 64 MiB in all', async () => {
    const lines = ['FROM scratch', 'ARG A0=xy'];
    for (let i = 1; i <= 19; i++) lines.push(`ARG A${i}=\${A${i - 1}}\${A${i - 1}}`);
    for (let i = 0; i < 100; i++) lines.push(`LABEL l${i}=$A19`);
    assertFails(await plan('amplified', lines), 'amplified', 21 + 62, /expanded words add up to more than 64 MiB/);
  });

  test('${...} nested 5000 deep', async () => {
    const depth = 5000;
    const lines = ['FROM scratch', `ENV A=${'${A:-"'.repeat(depth)}x${'"}'.repeat(depth)}`];
    assertFails(await plan('nested', lines), 'nested', 2, /nested more than 100 deep/);
  });

  test('a backtracking pattern on a long value', async () => {
    const lines = ['FROM scratch', 'ARG A0=aa'];
    for (let i = 1; i <= 16; i++) lines.push(`ARG A${i}=\${A${i - 1}}\${A${i - 1}}`);
    lines.push('ARG B=${A16//*a*a*a*a*a*b/x}', 'ARG C=${A16%%*a*a*a*a*a*b}', 'ARG D=${A16#*a*a*a*a*a*}');
    assertPlans(await plan('backtracking', lines));
  });
});
