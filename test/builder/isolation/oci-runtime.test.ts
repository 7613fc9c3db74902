import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunSpec } from '../../../builder/isolation/backend.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { deleteLeftoverContainers, OciRuntimeBackend } from '../../../builder/isolation/oci-runtime.js';
import { TsbuildError } from '../../../layers/errors.js';
import { createBusyboxRootfs, createMountPoints } from '../../support/busybox-rootfs.js';
import { requires } from '../../support/requirement.js';

const runtime = await findOciRuntime();

interface Outcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every path under `root` with its type, mode, owner, size, link target and mtime. */
async function listing(root: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const key = `${rel}/${name}`;
      const stats = await lstat(path);
      const target = stats.isSymbolicLink() ? await readlink(path) : '';
      entries.set(key, `${stats.mode.toString(8)} ${stats.uid}:${stats.gid} ${stats.size} ${stats.mtimeMs} ${target}`);
      if (stats.isDirectory()) await walk(path, key);
    }
  };
  await walk(root, '');
  return entries;
}

/** The processes this test process started, directly or not. */
async function descendants(): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => undefined);
    // The fields after the parenthesised command name are: state, ppid, ...
    if (stat !== undefined) parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
  }
  const isOurs = (pid: number): boolean => {
    for (let parent = parents.get(pid); parent !== undefined && parent > 1; parent = parents.get(parent)) {
      if (parent === process.pid) return true;
    }
    return false;
  };
  return [...parents.keys()].filter(isOurs);
}

/** Our descendants in another pid namespace: the container's processes. */
async function containerProcesses(): Promise<number[]> {
  const ours = await readlink('/proc/self/ns/pid');
  const pids: number[] = [];
  for (const pid of await descendants()) {
    const namespace = await readlink(`/proc/${pid}/ns/pid`).catch(() => ours);
    if (namespace !== ours) pids.push(pid);
  }
  return pids;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function mountsUnder(path: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').map((line) => line.split(' ')[4] ?? '').filter((point) => point === path || point.startsWith(`${path}/`));
}

async function filesNamed(dir: string, wanted: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.name === wanted) found.push(join(entry.path, entry.name));
  }
  return found;
}

// As root (as CI runs) a missing runtime is a failure; only an unprivileged run skips, saying why.
describe('OciRuntimeBackend', { skip: requires(process.getuid?.() === 0 ? false : 'needs root') }, () => {
  let dir: string;
  let rootfs: string;
  let hostRo: string;
  let hostRw: string;
  let hostsFile: string;
  let runs = 0;

  before(async () => {
    assert.ok(runtime, 'no working OCI runtime (runc or crun) here');
    dir = await realpath(await mkdtemp(join(tmpdir(), 'oci-runtime-test-')));
    rootfs = join(dir, 'rootfs');
    await createBusyboxRootfs(rootfs);
    await createMountPoints(rootfs, ['/etc/hosts']);
    await mkdir(join(rootfs, 'mnt/ro'), { recursive: true });
    await mkdir(join(rootfs, 'mnt/rw'), { recursive: true });
    hostRo = join(dir, 'host-ro');
    hostRw = join(dir, 'host-rw');
    hostsFile = join(dir, 'hosts');
    await mkdir(hostRo);
    await mkdir(hostRw);
    await writeFile(join(hostRo, 'hello'), 'hello from the host\n');
    await writeFile(hostsFile, '127.0.0.1 localhost buildhost\n');
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function backend(killGraceMs?: number): OciRuntimeBackend {
    return new OciRuntimeBackend({ runtimePath: runtime!.path, killGraceMs });
  }

  /**
   * Runs `overrides.args` in the busybox rootfs and checks what every run must leave: the rootfs
   * unchanged except for `changed` paths, no mounts under it, no runtime state in the scratch directory.
   */
  async function run(overrides: Partial<RunSpec>, options: { changed?: string[]; backend?: OciRuntimeBackend } = {}): Promise<Outcome> {
    const before = await listing(rootfs);
    const scratchDir = join(dir, `scratch-${runs++}`);
    await mkdir(scratchDir);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const spec: RunSpec = {
      rootfs, args: ['true'], env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'], cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [] }, hostname: 'buildhost', network: 'default', binds: [], scratchDir,
      ...overrides,
      stdout: (chunk) => {
        stdout.push(chunk);
        overrides.stdout?.(chunk);
      },
      stderr: (chunk) => stderr.push(chunk),
    };
    try {
      const result = await (options.backend ?? backend()).run(spec);
      return { exitCode: result.exitCode, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
    } finally {
      const afterwards = await listing(rootfs);
      const changed = new Set(options.changed ?? []);
      for (const key of new Set([...before.keys(), ...afterwards.keys()])) {
        if (!changed.has(key)) assert.equal(afterwards.get(key), before.get(key), `rootfs entry ${key} is unchanged`);
      }
      assert.deepEqual(await mountsUnder(rootfs), []);
      assert.deepEqual(await descendants(), [], 'nothing started for the run is still running');
      assert.deepEqual(await filesNamed(scratchDir, 'state.json'), []);
      await rm(scratchDir, { recursive: true, force: true });
    }
  }

  const sh = (script: string): string[] => ['/bin/sh', '-c', script];

  it('passes the arguments verbatim and returns the exit code', async () => {
    assert.deepEqual(await run({ args: ['/bin/echo', 'a  b', '$HOME', '*'] }), { exitCode: 0, stdout: 'a  b $HOME *\n', stderr: '' });
    assert.equal((await run({ args: sh('exit 42') })).exitCode, 42);
    assert.equal((await run({ args: ['false'] })).exitCode, 1);
  });

  it('captures stdout and stderr separately', async () => {
    const outcome = await run({ args: sh('echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3') });
    assert.deepEqual(outcome, { exitCode: 3, stdout: 'out1\nout2\n', stderr: 'err1\nerr2\n' });
  });

  it('sets exactly the given environment and working directory', async () => {
    const env = ['PATH=/bin:/usr/bin', 'HOME=/home/app', 'SPACED=a b  c', 'EMPTY='];
    const outcome = await run({ args: ['env'], env });
    assert.deepEqual(outcome.stdout.trimEnd().split('\n').sort(), [...env].sort());
    assert.equal((await run({ args: ['pwd'], cwd: '/tmp' })).stdout, '/tmp\n');
  });

  it('runs as the given uid, gid and supplementary groups', async () => {
    const ids = sh('id -u; id -g; id -G');
    assert.equal((await run({ args: ids, user: { uid: 1000, gid: 1000, additionalGids: [] } })).stdout, '1000\n1000\n1000\n');
    assert.equal((await run({ args: ids, user: { uid: 1000, gid: 50, additionalGids: [] } })).stdout, '1000\n50\n50\n');
    const grouped = await run({ args: ids, user: { uid: 1000, gid: 1000, additionalGids: [50, 29] } });
    const [uid, gid, groups] = grouped.stdout.trimEnd().split('\n');
    assert.deepEqual([uid, gid], ['1000', '1000']);
    assert.deepEqual(groups?.split(' ').map(Number).sort((a, b) => a - b), [29, 50, 1000]);
    assert.equal((await run({ args: ids })).stdout, '0\n0\n0\n');
  });

  it('gives root Docker’s default capabilities and a non-root user none', async () => {
    const dockerDefault = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31].reduce((mask, bit) => mask | (1n << BigInt(bit)), 0n);
    const caps = async (uid: number): Promise<Record<string, bigint>> => {
      const status = (await run({ args: ['cat', '/proc/self/status'], user: { uid, gid: uid, additionalGids: [] } })).stdout;
      return Object.fromEntries([...status.matchAll(/^(Cap\w+):\s*([0-9a-f]+)$/gm)].map((m) => [m[1], BigInt(`0x${m[2]}`)]));
    };
    const root = await caps(0);
    assert.equal(root.CapEff, dockerDefault);
    assert.equal(root.CapBnd, dockerDefault);
    const app = await caps(1000);
    assert.equal(app.CapEff, 0n);
    assert.equal(app.CapPrm, 0n);
    assert.equal(app.CapBnd, dockerDefault);
    // Without CAP_SYS_ADMIN even root cannot change the host name; CAP_CHOWN works.
    const outcome = await run({ args: sh('hostname other 2>/dev/null; echo $?; echo x > /tmp/f; chown 1000:50 /tmp/f; stat -c %u:%g /tmp/f; rm /tmp/f') }, { changed: ['/tmp'] });
    assert.equal(outcome.stdout, '1\n1000:50\n');
  });

  it('raises the open-file limit like Docker, as far as this host allows', async () => {
    const status = await readFile('/proc/self/status', 'utf8');
    const canRaise = (BigInt(`0x${/^CapEff:\s*(\w+)$/m.exec(status)![1]}`) >> 24n) & 1n;
    const hard = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(await readFile('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
    const expected = canRaise ? 1048576 : Math.min(1048576, hard);
    assert.equal((await run({ args: sh('ulimit -n; ulimit -Hn') })).stdout, `${expected}\n${expected}\n`);
  });

  it('sets the host name', async () => {
    assert.equal((await run({ args: ['hostname'], hostname: 'step-host' })).stdout, 'step-host\n');
  });

  it('gives the process a private /proc where it is pid 1', async () => {
    // Only shell built-ins, so the shell is the one process there is.
    const outcome = await run({ args: sh('echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done') });
    assert.equal(outcome.stdout, '1\n1\n');
  });

  it('gives a minimal /dev: the six device nodes, pts, shm and mqueue', async () => {
    const outcome = await run({ args: sh('cd /dev && for f in $(ls -A); do stat -c "%n %F %t:%T" "$f"; done; grep -E "^\\S+ /dev/(pts|shm|mqueue) " /proc/mounts | cut -d" " -f2,3') });
    const lines = outcome.stdout.trimEnd().split('\n');
    const nodes = lines.filter((line) => !line.startsWith('/')).filter((line) => !line.includes('symbolic link'));
    assert.deepEqual(nodes.sort(), [
      'full character special file 1:7', 'mqueue directory 0:0', 'null character special file 1:3', 'pts directory 0:0',
      'random character special file 1:8', 'shm directory 0:0', 'tty character special file 5:0',
      'urandom character special file 1:9', 'zero character special file 1:5',
    ]);
    const links = lines.filter((line) => line.includes('symbolic link')).map((line) => line.split(' ')[0]).sort();
    assert.deepEqual(links, ['fd', 'ptmx', 'stderr', 'stdin', 'stdout'], 'only the standard /dev links');
    assert.deepEqual(lines.filter((line) => line.startsWith('/')).sort(), ['/dev/mqueue mqueue', '/dev/pts devpts', '/dev/shm tmpfs']);
  });

  it('mounts /sys read-only', async () => {
    const outcome = await run({ args: sh('touch /sys/probe 2>/dev/null; echo $?; grep -E "^\\S+ /sys " /proc/mounts | cut -d" " -f3,4') });
    const [status, mount] = outcome.stdout.trimEnd().split('\n');
    assert.equal(status, '1');
    assert.match(mount!, /^sysfs ro,/);
  });

  it('binds host paths, read-only where asked', async () => {
    const binds = [
      { destination: '/mnt/ro', source: hostRo, readonly: true },
      { destination: '/mnt/rw', source: hostRw, readonly: false },
      { destination: '/etc/hosts', source: hostsFile, readonly: true },
    ];
    const outcome = await run({
      args: sh('cat /mnt/ro/hello /etc/hosts; touch /mnt/ro/new 2>/dev/null; echo ro=$?; echo hosts >> /etc/hosts 2>/dev/null; echo hosts=$?; echo written > /mnt/rw/new; echo rw=$?'),
      binds,
    });
    assert.equal(outcome.stdout, 'hello from the host\n127.0.0.1 localhost buildhost\nro=1\nhosts=1\nrw=0\n');
    assert.deepEqual(await readdir(hostRo), ['hello']);
    assert.equal(await readFile(hostsFile, 'utf8'), '127.0.0.1 localhost buildhost\n');
    assert.equal(await readFile(join(hostRw, 'new'), 'utf8'), 'written\n');
    await rm(join(hostRw, 'new'));
  });

  it('isolates the network only for network none', async () => {
    const hostInterfaces = (await readdir('/sys/class/net')).sort();
    const interfaces = async (network: RunSpec['network']): Promise<string[]> =>
      (await run({ args: ['ls', '/sys/class/net'], network })).stdout.trim().split(/\s+/).sort();
    assert.deepEqual(await interfaces('none'), ['lo']);
    assert.deepEqual(await interfaces('default'), hostInterfaces);
    assert.deepEqual(await interfaces('host'), hostInterfaces);
  });

  it('leaves only what the process wrote in the rootfs', async () => {
    const outcome = await run({ args: sh('echo data > /tmp/out'), user: { uid: 1000, gid: 1000, additionalGids: [] } }, { changed: ['/tmp', '/tmp/out'] });
    assert.equal(outcome.exitCode, 0);
    const written = await lstat(join(rootfs, 'tmp/out'));
    assert.equal(`${written.uid}:${written.gid}`, '1000:1000');
    assert.equal(await readFile(join(rootfs, 'tmp/out'), 'utf8'), 'data\n');
    await rm(join(rootfs, 'tmp/out'));
  });

  it('reports death by signal N as 128+N', async () => {
    let killed: number[] = [];
    const outcome = await run({
      args: sh('echo ready; exec sleep 60'),
      stdout: () => {
        void containerProcesses().then((pids) => {
          killed = pids;
          pids.forEach((pid) => process.kill(pid, 'SIGKILL'));
        });
      },
    });
    assert.equal(killed.length, 1, 'the step was one process');
    assert.equal(outcome.exitCode, 128 + 9);
  });

  it('on abort sends SIGTERM first, then rejects with the abort reason', async () => {
    const controller = new AbortController();
    const reason = new Error('step cancelled');
    let seen = '';
    let running: number[] = [];
    const started = Date.now();
    const outcome = run({
      args: sh('trap "echo got-term; exit 3" TERM; echo started; while :; do sleep 1; done'),
      signal: controller.signal,
      stdout: (chunk) => {
        seen += chunk.toString();
        if (seen === 'started\n') {
          void containerProcesses().then((pids) => {
            running = pids;
            controller.abort(reason);
          });
        }
      },
    }, { backend: backend(20_000) });
    await assert.rejects(outcome, (error) => error === reason);
    assert.ok(running.length > 0, 'the step was running when aborted');
    assert.deepEqual(running.filter(isAlive), [], 'the aborted processes are gone');
    assert.equal(seen, 'started\ngot-term\n');
    assert.ok(Date.now() - started < 15_000, 'SIGTERM ended it before the grace period');
  });

  it('on abort kills a process that ignores SIGTERM once the grace period is over', async () => {
    const controller = new AbortController();
    const started = Date.now();
    let abortedAt = 0;
    let running: number[] = [];
    const outcome = run({
      args: sh('trap "" TERM; echo started; while :; do sleep 1; done'),
      signal: controller.signal,
      stdout: () => {
        void containerProcesses().then((pids) => {
          running = pids;
          abortedAt = Date.now();
          controller.abort();
        });
      },
    }, { backend: backend(700) });
    await assert.rejects(outcome, { name: 'AbortError' });
    assert.ok(running.length > 0, 'the step was running when aborted');
    assert.deepEqual(running.filter(isAlive), [], 'the aborted processes are gone');
    const elapsed = Date.now() - abortedAt;
    assert.ok(elapsed >= 700, `waited the grace period (${elapsed} ms)`);
    assert.ok(Date.now() - started < 10_000);
  });

  it('on an abort while the container is being created still stops and deletes it', async () => {
    const controller = new AbortController();
    const outcome = run({ args: ['sleep', '1000'], signal: controller.signal }, { backend: backend(500) });
    setImmediate(() => controller.abort());
    await assert.rejects(outcome, { name: 'AbortError' });
  });

  it('keeps the bundle and runtime state on a tmpfs while the step runs, and nothing after', async () => {
    const scratchDir = join(dir, `scratch-${runs}`);
    let during: { mounted: boolean; config: string } | undefined;
    const outcome = await run({
      args: sh('echo ready'),
      env: ['PATH=/bin', 'TOKEN=kept-off-the-disk'],
      stdout: () => {
        void (async () => {
          const mounted = (await readFile('/proc/self/mounts', 'utf8')).split('\n').some((line) => line.startsWith(`tmpfs ${scratchDir} tmpfs `));
          during = { mounted, config: await readFile(join(scratchDir, 'bundle/config.json'), 'utf8') };
        })();
      },
    });
    assert.equal(outcome.exitCode, 0);
    assert.equal(during?.mounted, true, 'the scratch directory was a tmpfs');
    assert.match(during.config, /kept-off-the-disk/);
    assert.deepEqual(await mountsUnder(scratchDir), []);
  });

  it('leaves a record from which the sweep of a dead build deletes the running container', async () => {
    const scratchDir = join(dir, `scratch-${runs++}`);
    await mkdir(scratchDir);
    let running: number[] = [];
    let swept: Promise<void> | undefined;
    const result = await backend().run({
      rootfs, args: sh('echo started; exec sleep 1000'), env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] },
      hostname: 'buildhost', network: 'default', binds: [], scratchDir,
      stdout: () => {
        swept = containerProcesses().then(async (pids) => {
          running = pids;
          await deleteLeftoverContainers(dir);
        });
      },
      stderr: () => {},
    });
    await swept;
    assert.equal(running.length, 1, 'the step was running');
    assert.deepEqual(running.filter(isAlive), [], 'the sweep killed it');
    assert.equal(result.exitCode, 128 + 9);
    assert.deepEqual(await descendants(), [], 'nothing started for the run is still running');
    assert.deepEqual(await readdir(scratchDir), [], 'no record, bundle or state is left');
    await rm(scratchDir, { recursive: true });
  });

  it('rejects an already aborted signal without running anything', async () => {
    const reason = new Error('cancelled before start');
    await assert.rejects(run({ args: sh('echo ran > /tmp/ran'), signal: AbortSignal.abort(reason) }), (error) => error === reason);
  });

  it('fails with an isolation error when the executable does not exist', async () => {
    await assert.rejects(run({ args: ['/no/such/program'] }), (error) => error instanceof TsbuildError && error.code === 'ISOLATION' && /no\/such\/program/.test(error.message));
  });
});
