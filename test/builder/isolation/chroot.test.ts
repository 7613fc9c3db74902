import assert from 'node:assert/strict';
import { chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunSpec } from '../../../builder/isolation/backend.js';
import { ChrootBackend, chrootAvailable } from '../../../builder/isolation/chroot.js';
import { TsbuildError } from '../../../layers/errors.js';
import { createBusyboxRootfs, createMountPoints } from '../../support/busybox-rootfs.js';
import { requires } from '../../support/requirement.js';

const available = await chrootAvailable();
const backend = new ChrootBackend();

interface Outcome {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Every path under `dir` with its type, mode, owner, size and mtime, symlinks not followed. */
async function snapshot(dir: string, prefix = ''): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  for (const name of await readdir(join(dir, prefix))) {
    const path = join(prefix, name);
    const stats = await lstat(join(dir, path));
    entries.set(path, `${stats.mode}:${stats.uid}:${stats.gid}:${stats.size}:${stats.mtimeMs}`);
    if (stats.isDirectory()) for (const [inner, value] of await snapshot(dir, path)) entries.set(inner, value);
  }
  return entries;
}

/** Paths added, removed or changed between two snapshots, sorted. */
function changes(before: Map<string, string>, after: Map<string, string>): string[] {
  const paths = new Set([...before.keys(), ...after.keys()]);
  return [...paths].filter((path) => before.get(path) !== after.get(path)).sort();
}

/** Mount points at or under `dir` in this process's mount namespace. */
async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').map((line) => line.split(' ')[4] ?? '').filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/**
 * PIDs of processes running inside `rootfs`: in another pid namespace, with `rootfs` as their root
 * directory (their /proc/PID/root link reads `/` after pivot_root, so it is compared by device and
 * inode). unshare, waiting outside the pid namespace, shares the root but is not counted.
 */
async function processesIn(rootfs: string): Promise<number[]> {
  const root = await stat(rootfs);
  const ownPidNamespace = await readlink('/proc/self/ns/pid');
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const processRoot = await stat(`/proc/${name}/root/`);
      const inside = processRoot.dev === root.dev && processRoot.ino === root.ino;
      if (inside && (await readlink(`/proc/${name}/ns/pid`)) !== ownPidNamespace) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// As root (as CI runs) a missing tool is a failure; only an unprivileged run skips, saying why.
describe('ChrootBackend', { skip: requires(process.getuid?.() === 0 ? false : 'needs root') }, () => {
  let dir: string;
  let rootfs: string;
  let hostsFile: string;
  let dataDir: string;

  before(async () => {
    assert.ok(available, 'chroot isolation needs util-linux unshare and setpriv on the host');
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-chroot-'));
    rootfs = join(dir, 'rootfs');
    await createBusyboxRootfs(rootfs);
    await createMountPoints(rootfs, ['/etc/hosts']);
    await mkdir(join(rootfs, 'home/app'), { recursive: true });
    await chown(join(rootfs, 'home/app'), 1000, 1000);
    await mkdir(join(rootfs, 'mnt/data'), { recursive: true });
    hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, '127.0.0.1 localhost\n10.0.0.7 builder\n');
    dataDir = join(dir, 'data');
    await mkdir(dataDir);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function spec(args: string[], overrides: Partial<RunSpec> = {}): RunSpec {
    return {
      rootfs, args, env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'], cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [] }, hostname: 'buildbox', network: 'default',
      binds: [], scratchDir: dir, stdout: () => {}, stderr: () => {}, ...overrides,
    };
  }

  /**
   * Runs `args` and checks what must hold after every run: no mount left under the temp dir and
   * the rootfs changed only at `written` (paths relative to the rootfs, their parents included).
   */
  async function run(args: string[], overrides: Partial<RunSpec> = {}, written: string[] = []): Promise<Outcome> {
    const beforeRun = await snapshot(rootfs);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    try {
      const result = await backend.run(spec(args, { ...overrides, stdout: (chunk) => stdout.push(chunk), stderr: (chunk) => stderr.push(chunk) }));
      return { exitCode: result.exitCode, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
    } finally {
      assert.deepEqual(await mountsUnder(dir), []);
      assert.deepEqual(changes(beforeRun, await snapshot(rootfs)), [...written].sort());
      assert.deepEqual(await processesIn(rootfs), []);
    }
  }

  it('passes the arguments verbatim, finds the command on the PATH and returns its exit code', async () => {
    const echo = await run(['echo', 'a  b', '$HOME', '*']);
    assert.deepEqual(echo, { exitCode: 0, stdout: 'a  b $HOME *\n', stderr: '' });
    assert.equal((await run(['/bin/sh', '-c', 'exit 7'])).exitCode, 7);
    assert.equal((await run(['false'])).exitCode, 1);
    assert.deepEqual(await run(['no-such-command']), { exitCode: 127, stdout: '', stderr: 'no-such-command: command not found\n' });
    // found but not executable
    assert.equal((await run(['/etc'])).exitCode, 126);
  });

  it('runs the command as PID 1 of its namespace, which ignores signals it has no handler for', async () => {
    assert.deepEqual(await run(['/bin/sh', '-c', 'echo $$; kill -TERM $$; kill -KILL $$; echo alive']), { exitCode: 0, stdout: '1\nalive\n', stderr: '' });
  });

  it('reports death by signal N as 128+N', async () => {
    const running = run(['sleep', '1000']);
    // the launcher, before it execs the command, is in the rootfs too
    const sleeping = async (): Promise<number[]> => {
      const comms = await Promise.all((await processesIn(rootfs)).map(async (pid) => [pid, await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')] as const));
      return comms.filter(([, comm]) => comm === 'sleep\n').map(([pid]) => pid);
    };
    let pids: number[] = [];
    for (let tries = 0; pids.length === 0 && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      pids = await sleeping();
    }
    assert.equal(pids.length, 1);
    // only SIGKILL (and SIGSTOP) reach a namespace's PID 1 that has no handlers
    process.kill(pids[0] as number, 'SIGKILL');
    assert.equal((await running).exitCode, 137);
  });

  it('gives the process exactly the environment of the spec', async () => {
    const env = ['PATH=/bin', 'EMPTY=', 'SPACED=a b=c', 'LAST=z'];
    const result = await run(['/usr/bin/env'], { env });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.stdout.trimEnd().split('\n').sort(), [...env].sort());
  });

  it('starts in the working directory', async () => {
    assert.equal((await run(['pwd'], { cwd: '/home/app' })).stdout, '/home/app\n');
    assert.equal((await run(['pwd'], { cwd: '/tmp' })).stdout, '/tmp\n');
  });

  it('runs as root with no supplementary groups by default', async () => {
    const result = await run(['/bin/sh', '-c', 'id -u; id -g; id -G; grep -E "^(Uid|Gid|Groups):" /proc/self/status']);
    assert.deepEqual(result.stdout.split('\n').map((line) => line.trim()), ['0', '0', '0', 'Uid:\t0\t0\t0\t0', 'Gid:\t0\t0\t0\t0', 'Groups:', '']);
  });

  it('switches to a uid with its gid, real, effective and saved, and drops every capability', async () => {
    const user = { uid: 1000, gid: 1000, additionalGids: [] };
    const result = await run(['/bin/sh', '-c', 'id; grep -E "^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb):" /proc/self/status'], { user });
    assert.deepEqual(result.stdout.split('\n').map((line) => line.trim()), [
      'uid=1000(app) gid=1000(app)', 'Uid:\t1000\t1000\t1000\t1000', 'Gid:\t1000\t1000\t1000\t1000', 'Groups:',
      'CapPrm:\t0000000000000000', 'CapEff:\t0000000000000000', 'CapAmb:\t0000000000000000', '',
    ]);
  });

  it('sets uid:gid and the supplementary groups', async () => {
    const user = { uid: 1000, gid: 50, additionalGids: [1000, 29] };
    const result = await run(['/bin/sh', '-c', 'id -u; id -g; id -G; id -Gn'], { user });
    const [uid, gid, groups, names] = result.stdout.trimEnd().split('\n');
    assert.equal(uid, '1000');
    assert.equal(gid, '50');
    assert.deepEqual(groups?.split(' ').sort(), ['1000', '29', '50']);
    assert.deepEqual(names?.split(' ').sort(), ['app', 'audio', 'staff']);
  });

  it('sets the hostname in its own uts namespace', async () => {
    const hostBefore = hostname();
    assert.equal((await run(['hostname'], { hostname: 'step-7' })).stdout, 'step-7\n');
    assert.equal(hostname(), hostBefore);
  });

  it('mounts a private /proc that shows only its own pid namespace', async () => {
    const result = await run(['/bin/sh', '-c', 'ls /proc']);
    const pids = result.stdout.split('\n').filter((name) => /^\d+$/.test(name)).map(Number);
    assert.ok(pids.includes(1), `no init in ${pids.join(' ')}`);
    assert.ok(!pids.includes(process.pid));
    // init, the sh and ls: nothing from the host
    assert.ok(pids.length <= 3, `pids ${pids.join(' ')}`);
  });

  it('mounts a minimal /dev with the standard devices, pts and shm', async () => {
    const result = await run(['/bin/sh', '-c', 'ls -A /dev; echo; for d in null zero full random urandom tty; do stat -c "%n %F %t:%T %a" /dev/$d; done; echo; grep -E " /dev(/pts|/shm)? " /proc/mounts']);
    const [listing = '', devices = '', mounts = ''] = result.stdout.split('\n\n');
    assert.deepEqual(listing.split('\n').sort(), ['fd', 'full', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
    assert.deepEqual(devices.split('\n'), [
      '/dev/null character special file 1:3 666',
      '/dev/zero character special file 1:5 666',
      '/dev/full character special file 1:7 666',
      '/dev/random character special file 1:8 666',
      '/dev/urandom character special file 1:9 666',
      '/dev/tty character special file 5:0 666',
    ]);
    assert.deepEqual(mounts.trimEnd().split('\n').map((line) => line.split(' ').slice(0, 3).join(' ')), ['tmpfs /dev tmpfs', 'devpts /dev/pts devpts', 'shm /dev/shm tmpfs']);
  });

  it('lets an unprivileged user use the devices and /dev/shm', async () => {
    const user = { uid: 1000, gid: 1000, additionalGids: [] };
    const script = 'echo gone > /dev/null && head -c 3 /dev/zero | od -An -tx1 && echo x > /dev/shm/f && cat /dev/shm/f && test -c /dev/pts/ptmx && echo pts';
    assert.deepEqual(await run(['/bin/sh', '-c', script], { user }), { exitCode: 0, stdout: ' 00 00 00\nx\npts\n', stderr: '' });
  });

  it('mounts /sys read-only', async () => {
    const result = await run(['/bin/sh', '-c', 'grep " /sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1; touch /sys/probe']);
    assert.equal(result.stdout, 'ro\n');
    assert.notEqual(result.exitCode, 0);
    assert.match(result.stderr, /Read-only file system/);
  });

  it('binds files and directories, read-only when asked', async () => {
    const binds = [
      { source: hostsFile, destination: '/etc/hosts', readonly: true },
      { source: dataDir, destination: '/mnt/data', readonly: false },
    ];
    const result = await run(['/bin/sh', '-c', 'cat /etc/hosts; echo written > /mnt/data/out; echo 1.2.3.4 evil >> /etc/hosts'], { binds });
    assert.equal(result.stdout, '127.0.0.1 localhost\n10.0.0.7 builder\n');
    assert.match(result.stderr, /Read-only file system/);
    assert.equal(await readFile(hostsFile, 'utf8'), '127.0.0.1 localhost\n10.0.0.7 builder\n');
    assert.equal(await readFile(join(dataDir, 'out'), 'utf8'), 'written\n');
    assert.equal(await readFile(join(rootfs, 'etc/hosts'), 'utf8'), '');
  });

  it('mounts a bind through symlinks as the process sees them, never outside the rootfs', async () => {
    // /etc/resolv.conf -> ../../../../../../resolv.real resolves to /resolv.real inside the rootfs
    const outside = join(dir, 'resolv.real');
    await writeFile(outside, 'outside\n');
    await writeFile(join(rootfs, 'resolv.real'), '');
    await symlink('../../../../../../resolv.real', join(rootfs, 'etc/resolv.conf'));
    try {
      const source = join(dir, 'resolv.conf');
      await writeFile(source, 'nameserver 192.0.2.53\n');
      const result = await run(['cat', '/etc/resolv.conf'], { binds: [{ source, destination: '/etc/resolv.conf', readonly: true }] });
      assert.equal(result.stdout, 'nameserver 192.0.2.53\n');
      assert.equal(await readFile(outside, 'utf8'), 'outside\n');
    } finally {
      await rm(join(rootfs, 'etc/resolv.conf'));
      await rm(join(rootfs, 'resolv.real'));
    }
  });

  it("has its own network by default, only lo with network none, and shares the host's with network host", async () => {
    const hostInterfaces = (await readdir('/sys/class/net')).sort();
    const shared = await run(['ls', '/sys/class/net'], { network: 'host' });
    assert.deepEqual(shared.stdout.trimEnd().split('\n').sort(), hostInterfaces);
    // slirp4netns (a test dependency) connects the default network through tap0
    const own = await run(['/bin/sh', '-c', 'ls /sys/class/net; ip -4 -o addr show tap0 | tr -s " " | cut -d" " -f4'], { network: 'default' });
    assert.equal(own.stdout, 'lo\ntap0\n10.0.2.100/24\n');
    const none = await run(['/bin/sh', '-c', 'ls /sys/class/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; cat /sys/class/net/lo/operstate'], { network: 'none' });
    assert.equal(none.stdout, 'lo\nlo\nunknown\n');
  });

  it('keeps stdout and stderr apart', async () => {
    const result = await run(['/bin/sh', '-c', 'echo out1; echo err1 >&2; echo out2; echo err2 >&2']);
    assert.deepEqual(result, { exitCode: 0, stdout: 'out1\nout2\n', stderr: 'err1\nerr2\n' });
  });

  it('leaves in the rootfs exactly what the process wrote', async () => {
    const user = { uid: 1000, gid: 1000, additionalGids: [] };
    const result = await run(['/bin/sh', '-c', 'echo hi > /tmp/note; mkdir /home/app/cache'], { user }, ['tmp', 'tmp/note', 'home/app', 'home/app/cache']);
    assert.equal(result.exitCode, 0);
    const note = await lstat(join(rootfs, 'tmp/note'));
    assert.deepEqual([note.uid, note.gid], [1000, 1000]);
    await rm(join(rootfs, 'tmp/note'));
    await rm(join(rootfs, 'home/app/cache'), { recursive: true });
  });

  it('kills every process it started on abort, then rejects', { timeout: 20_000 }, async () => {
    const controller = new AbortController();
    const beforeRun = await snapshot(rootfs);
    const running = backend.run(spec(['/bin/sh', '-c', 'sleep 1000 & (sleep 1000; echo never) & wait'], { signal: controller.signal }));
    running.catch(() => {});
    try {
      // the sh, its two sleeps and the subshell between them
      let pids: number[] = [];
      for (let tries = 0; pids.length !== 4 && tries < 100; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        pids = await processesIn(rootfs);
      }
      assert.equal(pids.length, 4, `found ${pids.join(' ')}`);
      const startTime = async (pid: number): Promise<string | undefined> => {
        const fields = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ');
        return fields?.[0] === 'Z' ? undefined : fields?.[19];
      };
      const startTimes = await Promise.all(pids.map(startTime));
      controller.abort(new Error('stop'));
      await assert.rejects(running, /stop/);
      // the kernel kills the namespace's processes as its init dies; give their exits a moment
      const survivors = async (): Promise<number[]> => {
        const alive = await Promise.all(pids.map(async (pid, index) => (await startTime(pid)) === startTimes[index]));
        return pids.filter((_, index) => alive[index]);
      };
      for (let tries = 0; (await survivors()).length > 0 && tries < 40; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
      // gone (or a zombie waiting for its reaper), or the PID now names another process
      assert.deepEqual(await survivors(), []);
    } finally {
      controller.abort(new Error('stop'));
      await running.catch(() => {});
    }
    assert.deepEqual(await processesIn(rootfs), []);
    assert.deepEqual(await mountsUnder(dir), []);
    assert.deepEqual(changes(beforeRun, await snapshot(rootfs)), []);
  });

  it('rejects without running when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await assert.rejects(backend.run(spec(['/bin/sh', '-c', 'echo ran > /tmp/ran'], { signal: controller.signal })), /too late/);
    await assert.rejects(lstat(join(rootfs, 'tmp/ran')), { code: 'ENOENT' });
  });

  it('rejects with a one-line error when the setup fails, and leaves nothing behind', async () => {
    const binds = [{ source: join(dir, 'missing'), destination: '/etc/hosts', readonly: true }];
    const beforeRun = await snapshot(rootfs);
    await assert.rejects(backend.run(spec(['true'], { binds })), (error: unknown) => {
      assert.ok(error instanceof TsbuildError);
      assert.equal(error.code, 'ISOLATION');
      assert.match(error.message, /^chroot isolation could not start the process: cannot bind .*missing/);
      assert.ok(!error.message.includes('\n'));
      return true;
    });
    assert.deepEqual(await mountsUnder(dir), []);
    assert.deepEqual(changes(beforeRun, await snapshot(rootfs)), []);
  });

  it('refuses an environment entry that is not KEY=value', async () => {
    await assert.rejects(backend.run(spec(['true'], { env: ['PATH=/bin', 'JUSTNAME'] })), { code: 'ISOLATION' });
  });
});
