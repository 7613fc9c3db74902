import assert from 'node:assert/strict';
import { chown, lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { RunSpec } from '../../../builder/isolation/backend.js';
import { InPlaceBackend, runProcess } from '../../../builder/isolation/in-place.js';
import { placeBindFiles } from '../../../builder/isolation/in-place-files.js';
import { TsbuildError } from '../../../layers/errors.js';
import { requires } from '../../support/requirement.js';

const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-in-place-backend-'));
after(() => rm(work, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;
let counter = 0;

describe('placeBindFiles', () => {
  async function setup(): Promise<{ root: string; binds: { destination: string; source: string; readonly: boolean }[] }> {
    const root = path.join(work, `root-${++counter}`);
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc/hosts'), 'image hosts\n', { mode: 0o600 });
    await utimes(path.join(root, 'etc/hosts'), 1_000_000, 1_500_000);
    if (isRoot) await chown(path.join(root, 'etc/hosts'), 123, 456);
    const sources = path.join(work, `sources-${counter}`);
    await mkdir(sources);
    const binds = ['hosts', 'hostname', 'resolv.conf'].map((name) => ({ destination: `/etc/${name}`, source: path.join(sources, name), readonly: true }));
    for (const bind of binds) await writeFile(bind.source, `generated ${path.basename(bind.source)}\n`);
    return { root, binds };
  }

  it('writes the bind files into place, keeping inodes, and puts everything back', async () => {
    const { root, binds } = await setup();
    const hosts = path.join(root, 'etc/hosts');
    const before = await stat(hosts);
    const files = await placeBindFiles(root, binds, (dest) => dest === '/etc/resolv.conf');
    assert.deepEqual(files.placed, ['/etc/hosts', '/etc/hostname']);
    assert.equal(await readFile(hosts, 'utf8'), 'generated hosts\n');
    assert.equal((await stat(hosts)).ino, before.ino);
    assert.equal(await readFile(path.join(root, 'etc/hostname'), 'utf8'), 'generated hostname\n');
    await assert.rejects(lstat(path.join(root, 'etc/resolv.conf')));
    await files.restore();
    const after = await stat(hosts);
    assert.equal(await readFile(hosts, 'utf8'), 'image hosts\n');
    assert.deepEqual([after.ino, after.mode, after.uid, after.gid, after.mtimeMs], [before.ino, before.mode, before.uid, before.gid, before.mtimeMs]);
    await assert.rejects(lstat(path.join(root, 'etc/hostname')));
  });

  it('restores files the process replaced or removed', async () => {
    const { root, binds } = await setup();
    const files = await placeBindFiles(root, binds, () => false);
    await rm(path.join(root, 'etc/hosts'));
    await mkdir(path.join(root, 'etc/hosts'));
    await rm(path.join(root, 'etc/hostname'));
    await symlink('/nowhere', path.join(root, 'etc/resolv.conf.tmp'));
    await files.restore();
    const hosts = await lstat(path.join(root, 'etc/hosts'));
    assert.ok(hosts.isFile());
    assert.equal(hosts.mode & 0o7777, 0o600);
    assert.equal(hosts.mtimeMs, 1_500_000_000);
    assert.equal(await readFile(path.join(root, 'etc/hosts'), 'utf8'), 'image hosts\n');
    await assert.rejects(lstat(path.join(root, 'etc/hostname')));
    await assert.rejects(lstat(path.join(root, 'etc/resolv.conf')));
  });

  it('refuses a destination that is not a file and leaves nothing placed', async () => {
    const { root, binds } = await setup();
    await mkdir(path.join(root, 'etc/resolv.conf'));
    await assert.rejects(placeBindFiles(root, binds, () => false), (e: unknown) => e instanceof TsbuildError && e.code === 'ISOLATION');
    assert.equal(await readFile(path.join(root, 'etc/hosts'), 'utf8'), 'image hosts\n');
    await assert.rejects(lstat(path.join(root, 'etc/hostname')));
  });
});

/** A spec running `args` on the real root with no binds: nothing is written anywhere. */
function spec(args: string[], extra: Partial<RunSpec> = {}): RunSpec & { out: () => string; err: () => string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  return {
    rootfs: '/',
    args,
    env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello there'],
    cwd: work,
    user: { uid: 0, gid: 0, additionalGids: [] },
    hostname: 'tsbuild',
    network: 'default',
    binds: [],
    scratchDir: work,
    stdout: (chunk) => out.push(chunk),
    stderr: (chunk) => err.push(chunk),
    ...extra,
    out: () => Buffer.concat(out).toString(),
    err: () => Buffer.concat(err).toString(),
  };
}

async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // A zombie has exited; only its parent's wait is missing.
  return stat !== undefined && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

describe('runProcess', () => {
  it('passes the environment, working directory and exit status', async () => {
    const s = spec(['/bin/sh', '-c', 'echo "$GREETING"; pwd; echo oops >&2; exit 3']);
    assert.equal((await runProcess(s)).exitCode, 3);
    assert.equal(s.out(), `hello there\n${work}\n`);
    assert.equal(s.err(), 'oops\n');
  });

  it('reports death by signal as 128+N and a missing command as 127', async () => {
    assert.equal((await runProcess(spec(['/bin/sh', '-c', 'kill -TERM $$']))).exitCode, 143);
    const missing = spec(['/no/such/command']);
    assert.equal((await runProcess(missing)).exitCode, 127);
    assert.match(missing.err(), /no\/such\/command/);
  });

  it('runs as the user, with and without supplementary groups', { skip: requires(!isRoot && 'changing ids needs root') }, async () => {
    const plain = spec(['/bin/sh', '-c', 'id -u; id -g; id -G'], { user: { uid: 65534, gid: 65533, additionalGids: [] } });
    assert.equal((await runProcess(plain)).exitCode, 0);
    assert.equal(plain.out(), '65534\n65533\n65533\n');
    const grouped = spec(['/bin/sh', '-c', 'id -u; id -g; id -G; echo "$GREETING"; pwd'], {
      user: { uid: 65534, gid: 65533, additionalGids: [4, 65533, 27, 4] },
      cwd: '/',
    });
    assert.equal((await runProcess(grouped)).exitCode, 0, grouped.err());
    assert.equal(grouped.out(), '65534\n65533\n65533 4 27\nhello there\n/\n');
    const failing = spec(['/bin/sh', '-c', 'exit 9'], { user: { uid: 1, gid: 1, additionalGids: [2] }, cwd: '/' });
    assert.equal((await runProcess(failing)).exitCode, 9);
  });

  it('kills what the process left running in its group when it exits', async () => {
    const s = spec(['/bin/sh', '-c', 'sleep 300 >/dev/null 2>&1 & echo $!']);
    assert.equal((await runProcess(s)).exitCode, 0);
    const pid = Number(s.out().trim());
    assert.ok(pid > 0);
    for (let i = 0; i < 50 && (await isAlive(pid)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await isAlive(pid), false);
  });

  it('kills the whole group on abort and rejects with the reason', async () => {
    const controller = new AbortController();
    const s = spec(['/bin/sh', '-c', 'sleep 300 & echo $!; wait'], { signal: controller.signal });
    const running = runProcess(s);
    for (let i = 0; i < 100 && s.out() === ''; i++) await new Promise((r) => setTimeout(r, 20));
    const pid = Number(s.out().trim());
    controller.abort(new Error('stop'));
    await assert.rejects(running, /stop/);
    for (let i = 0; i < 50 && (await isAlive(pid)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await isAlive(pid), false);
  });
});

describe('InPlaceBackend', () => {
  const backend = new InPlaceBackend({ protectedPaths: [work] });

  it('runs a process on / when there is nothing to place', async () => {
    const s = spec(['/bin/sh', '-c', 'echo "$GREETING"']);
    assert.deepEqual(await backend.run(s), { exitCode: 0 });
    assert.equal(s.out(), 'hello there\n');
  });

  it('refuses another rootfs, --network=none and bad specs before running anything', async () => {
    const marker = path.join(work, 'ran');
    const cmd = ['/bin/sh', '-c', `touch ${marker}`];
    await assert.rejects(backend.run(spec(cmd, { rootfs: work })), (e: unknown) => e instanceof TsbuildError && /owns \//.test(e.message));
    await assert.rejects(backend.run(spec(cmd, { network: 'none' })), (e: unknown) => e instanceof TsbuildError && e.code === 'RUN_UNSUPPORTED');
    await assert.rejects(backend.run(spec(cmd, { env: ['NOEQUALS'] })), (e: unknown) => e instanceof TsbuildError && e.code === 'ISOLATION');
    await assert.rejects(backend.run(spec([], {})), (e: unknown) => e instanceof TsbuildError && e.code === 'ISOLATION');
    await assert.rejects(lstat(marker));
  });
});
