/**
 * Escapes that RUN steps under --isolation=chroot (as root) and --isolation=rootless (as an
 * unprivileged user) must not manage: every probe runs in a real build through the CLI, tries to
 * reach the host (through /proc/1/root, a double chroot, the host network, the invoking user's
 * home), and the test checks canary files on the host afterwards. It also scans every process's
 * command line for a secret while a step runs, and SIGKILLs tsbuild mid-step to check that no step
 * process survives it.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, chmod, chown, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { aarch64Syscalls } from '../../builder/isolation/launcher/syscall-table-aarch64.js';
import { x86_64Syscalls } from '../../builder/isolation/launcher/syscall-table-x86_64.js';
import { mountsUnder } from '../../builder/host/mountinfo.js';
import { writeBusyboxImage } from '../support/busybox-image.js';
import { debianBookwormImage } from '../support/debian-image.js';
import { repoRoot } from '../support/repo-root.js';
import { validateLayout } from '../support/validate-layout.js';
import { ensureUser, type TestUser } from '../support/unprivileged-user.js';

if (process.getuid?.() !== 0) throw new Error('the escape tests need root (chroot isolation, and a test user for rootless)');

const execFileAsync = promisify(execFile);
const token = `tsbuild-${randomBytes(8).toString('hex')}`;
let work: string;
let busybox: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'tsbuild-escape-'));
  await chmod(work, 0o755);
  busybox = join(work, 'busybox');
  await writeBusyboxImage(busybox);
});

after(async () => {
  // a SIGKILLed tsbuild leaves its rootfs mounts behind
  for (const point of await mountsUnder(work)) await execFileAsync('umount', ['--lazy', point]);
  await rm(work, { recursive: true, force: true });
});

interface Build {
  readonly child: ChildProcess;
  /** Exit code (or 128+N) and the combined output, once the CLI ends. */
  readonly done: Promise<{ code: number; output: string }>;
}

interface BuildOptions {
  readonly isolation: 'oci' | 'chroot' | 'rootless';
  /** Build as this user (through setpriv), else as root. */
  readonly user?: TestUser;
  readonly dockerfile: string;
  /** The base image layout (busybox unless given). */
  readonly base?: string;
  readonly extraArgs?: readonly string[];
  readonly extraEnv?: Readonly<Record<string, string>>;
}

/** A fresh directory tree for one build, owned by the user who builds. */
async function buildDirs(name: string, user: TestUser | undefined): Promise<{ root: string; home: string; context: string }> {
  const root = join(work, name);
  const dirs = { root, home: join(root, 'home'), tmp: join(root, 'tmp'), context: join(root, 'context') };
  for (const dir of Object.values(dirs)) {
    await mkdir(dir, { recursive: true });
    if (user) await chown(dir, user.uid, user.gid);
  }
  return dirs;
}

/** Starts `tsbuild` as a separate process, so the test can look at the host while it runs. */
async function startBuild(name: string, options: BuildOptions): Promise<Build & { home: string }> {
  const dirs = await buildDirs(name, options.user);
  await writeFile(join(dirs.context, 'Dockerfile'), options.dockerfile);
  const env = { HOME: dirs.home, TMPDIR: join(dirs.root, 'tmp'), PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...options.extraEnv };
  const cli = [
    join(repoRoot(), 'dist/cli/main.js'), '--no-cache', '--isolation', options.isolation,
    '--build-context', `base=oci-layout://${options.base ?? busybox}`, '--report', 'none', ...(options.extraArgs ?? []),
    '-o', `type=oci,dest=${join(dirs.root, 'out')}`, '--compression-level', '1', dirs.context,
  ];
  // The environment goes through spawn, never through argv (`env KEY=VALUE`), where a secret in it
  // would show in the command lines the secret tests scan.
  const child = options.user
    ? spawn('setpriv', ['--reuid', String(options.user.uid), '--regid', String(options.user.gid), '--init-groups', process.execPath, ...cli], { cwd: dirs.root, env })
    : spawn(process.execPath, cli, { cwd: dirs.root, env });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => (output += text));
  child.stderr?.setEncoding('utf8').on('data', (text: string) => (output += text));
  const exited = new Promise<{ code: number; output: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), output }));
  });
  // A build that succeeded wrote an OCI layout: it must be valid (umoci unpacks it among the checks).
  const done = exited.then(async (result) => {
    if (result.code === 0) await validateLayout(join(dirs.root, 'out'));
    return result;
  });
  return { child, done, home: dirs.home };
}

/** The `probe:NAME:VALUE` lines a build printed, as NAME → VALUE. */
function probes(output: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const match of output.matchAll(/probe:([\w-]+):(.*)$/gm)) found.set(match[1] as string, (match[2] as string).trim());
  return found;
}

const exists = (path: string): Promise<boolean> => access(path).then(() => true, () => false);

/** Every process's command line, by pid. */
async function commandLines(): Promise<Map<number, string>> {
  const lines = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const text = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => undefined);
    if (text !== undefined) lines.set(Number(name), text.replaceAll('\0', ' '));
  }
  return lines;
}

/** PIDs of the processes in the pid namespace `namespace` (a /proc/PID/ns/pid link text). */
async function processesInPidNamespace(namespace: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if ((await readlink(`/proc/${name}/ns/pid`).catch(() => '')) === namespace) pids.push(Number(name));
  }
  return pids;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `find` every 100 ms until it returns a value, for at most `ms`. */
async function waitFor<T>(find: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    const value = await find();
    if (value !== undefined) return value;
  }
  return undefined;
}

/** The step's privileges and network, printed as probes. */
const privilegeProbe = [
  'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status | sed "s/^\\([A-Za-z]*\\):\\s*/probe:\\1:/"',
  'echo "probe:netns:$(readlink /proc/self/ns/net)"',
  // host-wide sysctls stay out of reach even for a root step
  'echo "probe:proc-sys:$(grep " /proc/sys " /proc/mounts | cut -d" " -f4 | cut -d, -f1)"',
].join('; ');

const defaultRootCaps = new Map([
  ['CapInh', '0000000000000000'], ['CapPrm', '00000000a80425fb'], ['CapEff', '00000000a80425fb'],
  ['CapBnd', '00000000a80425fb'], ['CapAmb', '0000000000000000'], ['NoNewPrivs', '1'], ['Seccomp', '2'], ['proc-sys', 'ro'],
]);
const defaultUserCaps = new Map([...defaultRootCaps, ['CapPrm', '0000000000000000'], ['CapEff', '0000000000000000']]);

function assertPrivileges(found: Map<string, string>, expected: Map<string, string>): void {
  for (const [name, value] of expected) assert.equal(found.get(name), value, name);
}

/** Runs `RUN sleep` with a secret in its environment and scans all command lines while it sleeps. */
async function assertSecretNotInArgv(name: string, isolation: 'chroot' | 'rootless', user?: TestUser): Promise<void> {
  const secret = `secret-${randomBytes(12).toString('hex')}`;
  const marker = `marker-${randomBytes(6).toString('hex')}`;
  const build = await startBuild(name, {
    isolation, ...(user ? { user } : {}),
    dockerfile: `FROM base\nRUN --mount=type=secret,id=s,env=S test -n "$S" && sleep 3 && echo ${marker}\n`,
    extraArgs: ['--secret', 'id=s,env=TSBUILD_ESCAPE_SECRET'], extraEnv: { TSBUILD_ESCAPE_SECRET: secret },
  });
  let sawStep = false;
  let finished = false;
  void build.done.then(() => (finished = true));
  while (!finished) {
    const lines = [...(await commandLines()).values()];
    assert.ok(!lines.some((line) => line.includes(secret)), 'the secret shows in a command line');
    sawStep ||= lines.some((line) => line.includes(marker) && line.includes('sleep 3'));
    await sleep(50);
  }
  const { code, output } = await build.done;
  assert.equal(code, 0, output);
  assert.ok(sawStep, 'the step was never seen running');
  assert.ok(!output.includes(secret));
}

/** Starts a long step, SIGKILLs the tsbuild process and checks that the step's processes die with it. */
async function assertStepDiesWithTsbuild(name: string, isolation: 'chroot' | 'rootless', user?: TestUser): Promise<void> {
  const marker = `marker-${randomBytes(6).toString('hex')}`;
  const build = await startBuild(name, { isolation, ...(user ? { user } : {}), dockerfile: `FROM base\nRUN sleep 1000 & sleep 1001; echo ${marker}\n` });
  let namespace: string | undefined;
  try {
    const stepPid = await waitFor(async () => [...(await commandLines())].find(([, line]) => line.includes(marker))?.[0], 60_000);
    assert.ok(stepPid !== undefined, 'the step never started');
    const stepNamespace = await readlink(`/proc/${stepPid}/ns/pid`);
    namespace = stepNamespace;
    assert.notEqual(stepNamespace, await readlink('/proc/self/ns/pid'));
    assert.ok((await processesInPidNamespace(stepNamespace)).length >= 3, 'the sh and both sleeps run');
    build.child.kill('SIGKILL');
    const left = await waitFor(async () => ((await processesInPidNamespace(stepNamespace)).length === 0 ? [] : undefined), 5000);
    assert.deepEqual(left ?? await processesInPidNamespace(stepNamespace), []);
  } finally {
    build.child.kill('SIGKILL');
    await build.done;
    // whatever survived must not outlive the test
    if (namespace !== undefined) for (const pid of await processesInPidNamespace(namespace)) process.kill(pid, 'SIGKILL');
  }
}

/** Runs system calls the seccomp policy refuses, and some it allows, in a step; checks each errno. */
async function assertSeccompPolicy(name: string, isolation: 'oci' | 'chroot'): Promise<void> {
  const { layoutDir, tag } = await debianBookwormImage();
  const table = process.arch === 'arm64' ? aarch64Syscalls : x86_64Syscalls;
  const nr = (name: string): number => table[name] as number;
  // name, system call number, arguments; perl's syscall() gives -1 and errno on failure
  const calls: [string, number, number[]][] = [
    ['getpid', nr('getpid'), []],
    ['keyctl', nr('keyctl'), [0, -1, 0]],
    ['add_key', nr('add_key'), [0, 0, 0, 0, 0]],
    ['unshare-net', nr('unshare'), [0x40000000]],
    ['clone-newuser', nr('clone'), [0x10000000 | 17, 0, 0, 0, 0]],
    ['mount', nr('mount'), [0, 0, 0, 0, 0]],
    ['bpf', nr('bpf'), [0, 0, 0]],
    ['ptrace', nr('ptrace'), [0, 0, 0, 0]],
    ['clone3', nr('clone3'), [0, 0]],
    ['personality-query', nr('personality'), [0xffffffff]],
    ['personality-no-aslr', nr('personality'), [0x0040000]],
    ['unknown-number', 1000, []],
  ];
  const script = calls.map(([name, number, args]) => `$r = syscall(${[number, ...args].join(', ')}); print "probe:${name}:", ($r == -1 ? $!+0 : "ok"), "\\n";`).join(' ');
  const dockerfile = `FROM base\nRUN perl -e '${script}' && unshare -n true || echo probe:unshare-tool:refused; echo work > /tmp/w && echo probe:work:$(cat /tmp/w)\n`;
  const { done } = await startBuild(name, { isolation, dockerfile, base: `${layoutDir}:${tag}` });
  const { code, output } = await done;
  assert.equal(code, 0, output);
  const found = probes(output);
  const EPERM = String(osConstants.errno.EPERM);
  const ENOSYS = String(osConstants.errno.ENOSYS);
  assert.deepEqual(Object.fromEntries(calls.map(([name]) => [name, found.get(name)])), {
    'getpid': 'ok', 'keyctl': EPERM, 'add_key': EPERM, 'unshare-net': EPERM, 'clone-newuser': EPERM, 'mount': EPERM, 'bpf': EPERM,
    'ptrace': EPERM, 'clone3': ENOSYS, 'personality-query': 'ok', 'personality-no-aslr': EPERM, 'unknown-number': ENOSYS,
  });
  assert.equal(found.get('unshare-tool'), 'refused');
  assert.equal(found.get('work'), 'work');
}

describe('chroot isolation (as root)', () => {
  it('gives a root step the default capabilities, no_new_privs, a seccomp filter and its own network', async () => {
    const dockerfile = `FROM base\nRUN ${privilegeProbe}; ip addr add 10.123.45.6/32 dev lo && echo probe:addr:added || echo probe:addr:refused\n`;
    const { done } = await startBuild('privileges-root', { isolation: 'chroot', dockerfile });
    const { code, output } = await done;
    assert.equal(code, 0, output);
    const found = probes(output);
    assertPrivileges(found, defaultRootCaps);
    assert.notEqual(found.get('netns'), await readlink('/proc/self/ns/net'));
    assert.equal(found.get('addr'), 'refused');
    const { stdout: hostLoopback } = await execFileAsync('ip', ['-o', 'addr', 'show', 'dev', 'lo']);
    assert.ok(!hostLoopback.includes('10.123.45.6'));
  });

  it('gives a non-root step no capabilities', async () => {
    const { done } = await startBuild('privileges-user', { isolation: 'chroot', dockerfile: `FROM base\nUSER 1000:1000\nRUN ${privilegeProbe}\n` });
    const { code, output } = await done;
    assert.equal(code, 0, output);
    assertPrivileges(probes(output), defaultUserCaps);
  });

  it('refuses namespaces, mounts, keyrings, ptrace and unknown system calls, while ordinary work succeeds', async () => {
    await assertSeccompPolicy('seccomp', 'chroot');
  });

  it('cannot write a host file through /proc/1/root', async () => {
    const canary = join(tmpdir(), `tsbuild-escape-proc1-${randomBytes(6).toString('hex')}`);
    // PID 1 is the step itself, or the server of a sandbox shared by several steps, which it may not look into.
    const dockerfile = `FROM base\nRUN echo "probe:root:$(readlink /proc/1/root || echo unreadable)"; (echo escaped > /proc/1/root${canary}) 2>/dev/null; echo probe:write:${'$'}(cat ${canary} 2>/dev/null)\n`;
    const { done } = await startBuild('proc1', { isolation: 'chroot', dockerfile });
    const { code, output } = await done;
    try {
      assert.equal(code, 0, output);
      assert.match(probes(output).get('root') ?? '', /^(\/|unreadable)$/);
      assert.equal(await exists(canary), false, 'the canary appeared on the host');
    } finally {
      await rm(canary, { force: true });
    }
  });

  it('cannot leave its root with a double chroot', async () => {
    const { layoutDir, tag } = await debianBookwormImage();
    const canary = join(tmpdir(), `tsbuild-escape-chroot-${randomBytes(6).toString('hex')}`);
    // chroot into a subdirectory without entering it, climb out of it with .., chroot there
    const escape = `mkdir "/jail"; chroot "/jail" or die "chroot: $!"; chdir ".." for 1..64; chroot "." or die "chroot .: $!"; ` +
      `open(my $f, ">", "${canary}") or die "open: $!"; print $f "escaped\\n"; close $f; print "probe:double-chroot:wrote\\n";`;
    const dockerfile = `FROM base\nRUN perl -e '${escape}' && test -f ${canary} && echo probe:landed:inside-rootfs\n`;
    const { done } = await startBuild('double-chroot', { isolation: 'chroot', dockerfile, base: `${layoutDir}:${tag}` });
    const { code, output } = await done;
    try {
      assert.equal(code, 0, output);
      // the climb ends at the step's own root, so the file lands in the rootfs
      assert.equal(probes(output).get('landed'), 'inside-rootfs');
      assert.equal(await exists(canary), false, 'the canary appeared on the host');
    } finally {
      await rm(canary, { force: true });
    }
  });

  it('never shows a secret in any command line', { timeout: 120_000 }, async () => {
    await assertSecretNotInArgv('secret-root', 'chroot');
  });

  it('takes every step process down when tsbuild is SIGKILLed', { timeout: 120_000 }, async () => {
    await assertStepDiesWithTsbuild('kill-root', 'chroot');
  });
});

describe('oci isolation (as root)', () => {
  it('applies the same seccomp policy as chroot and rootless', async () => {
    await assertSeccompPolicy('oci-seccomp', 'oci');
  });
});

describe('rootless isolation (as an unprivileged user)', () => {
  let user: TestUser;

  before(async () => {
    user = await ensureUser('tsbuild-escape', true);
  });

  it('gives the step the default capabilities, no_new_privs, a seccomp filter and its own network', async () => {
    const { done } = await startBuild('rootless-privileges', { isolation: 'rootless', user, dockerfile: `FROM base\nRUN ${privilegeProbe}\n` });
    const { code, output } = await done;
    assert.equal(code, 0, output);
    const found = probes(output);
    assertPrivileges(found, defaultRootCaps);
    assert.notEqual(found.get('netns'), await readlink('/proc/self/ns/net'));
  });

  it("can neither read the user's files nor write in the user's home through /proc/1/root", async () => {
    const dockerfile = (home: string): string =>
      `FROM base\nRUN cat /proc/1/root${home}/.docker/config.json; echo escaped > /proc/1/root${home}/canary; ` +
      `cat ${home}/.docker/config.json; echo escaped > ${home}/canary; echo probe:done:yes\n`;
    // the home directory is known only once the build's directories exist: write it, then start
    const dirs = await buildDirs('rootless-home', user);
    await mkdir(join(dirs.home, '.docker'), { recursive: true });
    await writeFile(join(dirs.home, '.docker/config.json'), `{"auths":{"registry.example":{"auth":"${token}"}}}\n`);
    await chown(join(dirs.home, '.docker'), user.uid, user.gid);
    await chown(join(dirs.home, '.docker/config.json'), user.uid, user.gid);
    const { done } = await startBuild('rootless-home', { isolation: 'rootless', user, dockerfile: dockerfile(dirs.home) });
    const { code, output } = await done;
    assert.equal(code, 0, output);
    assert.equal(probes(output).get('done'), 'yes');
    assert.ok(!output.includes(token), 'the step read the config');
    assert.equal(await exists(join(dirs.home, 'canary')), false, 'the canary appeared in the home directory');
  });

  it('never shows a secret in any command line', { timeout: 120_000 }, async () => {
    await assertSecretNotInArgv('rootless-secret', 'rootless', user);
  });

  // The step dies with the tsbuild process that runs it, but an unprivileged `tsbuild build`
  // re-executes itself in a user namespace (userns.ts) and that inner process survives the outer
  // one until userns.ts gives it a parent death signal.
  it('takes every step process down when tsbuild is SIGKILLed', { timeout: 120_000 }, async () => {
    await assertStepDiesWithTsbuild('rootless-kill', 'rootless', user);
  });
});
