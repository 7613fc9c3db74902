import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { findOciRuntime } from '../../builder/isolation/find-runtime.js';
import { mountsUnder } from '../../builder/host/mountinfo.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { repoRoot } from '../support/repo-root.js';
import { requires } from '../support/requirement.js';

const canRun = process.getuid?.() === 0 && (await findOciRuntime()) !== undefined;

let work: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-interrupt-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('Ctrl-C during a RUN stops the build and leaves no process, mount, workspace or output behind', { skip: requires(canRun ? false : 'needs root and runc') }, async () => {
  const base = path.join(work, 'busybox');
  await writeBusyboxImage(base);
  const context = path.join(work, 'context');
  const privateTmp = path.join(work, 'tmp');
  await mkdir(context);
  await mkdir(privateTmp);
  await writeFile(path.join(context, 'Dockerfile'), 'FROM busybox\nRUN echo started && sleep 60\n');
  const dest = path.join(work, 'out');
  const child = spawn(
    process.execPath,
    [path.join(repoRoot(), 'dist/cli/main.js'), '--build-context', `busybox=oci-layout://${base}`, '-o', `type=oci,dest=${dest}`, '--progress', 'plain', context],
    { env: { ...process.env, TMPDIR: privateTmp }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  const started = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('started')) resolve();
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let code: number | null;
  let sleeping: number[] = [];
  try {
    await started;
    for (let tries = 0; tries < 50 && sleeping.length === 0; tries++) {
      sleeping = await descendantsNamed(child.pid!, 'sleep');
      if (sleeping.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(sleeping.length > 0, 'the RUN process is running');
    child.kill('SIGINT');
    code = await exited;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  assert.equal(code, 130);
  assert.match(stderr.trimEnd().split('\n').at(-1)!, /^error: \S*Dockerfile:2: build interrupted$/);
  for (const pid of sleeping) assert.equal(await alive(pid), false, `process ${pid} must be gone`);
  assert.deepEqual(await readdir(privateTmp), [], 'the workspace is removed');
  assert.deepEqual(await mountsUnder(work), []);
  await assert.rejects(readdir(dest), 'no output is written');
});

/** PIDs of processes named `name` anywhere below `root` in the process tree. */
async function descendantsNamed(root: number, name: string): Promise<number[]> {
  const parents = new Map<number, number>();
  const names = new Map<number, string>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const match = /^(\d+) \((.*)\) \S+ (\d+)/.exec(stat);
    if (!match) continue;
    parents.set(Number(match[1]), Number(match[3]));
    names.set(Number(match[1]), match[2]!);
  }
  const below = (pid: number): boolean => {
    for (let p = parents.get(pid); p !== undefined && p !== 0; p = parents.get(p)) if (p === root) return true;
    return false;
  };
  return [...names].filter(([pid, n]) => n === name && below(pid)).map(([pid]) => pid);
}

async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
