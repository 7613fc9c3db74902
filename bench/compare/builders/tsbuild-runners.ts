/**
 * Where and as whom the bench starts tsbuild for each `--isolation` row, every command under GNU
 * time (`%e %M`: wall seconds and peak RSS in KiB of the process and the children it waited for):
 *
 * - `oci`, `chroot`: as root on this host.
 * - `rootless`: as an unprivileged system user with subordinate ids (created once, as the test
 *   suite creates its users), so tsbuild enters a user namespace and runs as uid 0 there with
 *   65,536 ids mapped, as the root of a pod with `hostUsers: false` is. Its peak RSS is the larger
 *   of the outer process and the one inside the namespace.
 * - `none`: in place, as root of a disposable container made like an unprivileged pod (the test
 *   suite's pod simulation: no CAP_SYS_ADMIN, the runtime's default seccomp profile), one per
 *   command, since a build in place replaces the container's root filesystem. GNU time wraps runc,
 *   so its figures include the container's start and stop; making the container is left out.
 */
import { chmod, chown, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { makePod, runPod, tsbuildArgs, type Bind } from '../../../test/pods/pod.js';
import { repoRoot } from '../../../test/support/repo-root.js';
import { ensureUser, runAs, type TestUser } from '../../../test/support/unprivileged-user.js';
import { lastLines, runCommand } from '../command.js';
import type { IsolationRow } from '../options.js';

const TIME = '/usr/bin/time';
const TIME_FORMAT = '%e %M';
/** The unprivileged user the rootless row builds as. */
const BENCH_USER = 'tsbuild-bench';

export interface TimedRun {
  /** Wall time of the command. */
  readonly seconds: number;
  /** GNU time's peak RSS of the command and its waited-for children. */
  readonly peakRssBytes: number;
  /** Its standard error (with standard output, in a pod). */
  readonly output: string;
}

/** How tsbuild is started for one isolation row. */
export interface TsbuildRunner {
  /** Who runs tsbuild where, for the builder's description. */
  readonly how: string;
  /**
   * Makes `dir`, where tsbuild keeps its cache and outputs, ready for it; runs once, first. The
   * folders tsbuild reads are in `dir`'s parent, the bench's work folder.
   */
  prepare(dir: string): Promise<void>;
  /**
   * Runs `tsbuild ARGS` with `env` added, reading `reads` (contexts, Dockerfile folders), and
   * `timeFile` (in `dir`) for GNU time. Throws the command's last lines when it fails.
   */
  run(args: readonly string[], env: Readonly<Record<string, string>>, reads: readonly string[], timeFile: string): Promise<TimedRun>;
}

/** GNU time's last line, `SECONDS KIB`; before it, a failed command gets a line of its own. */
async function readTimeFile(timeFile: string): Promise<{ seconds: number; peakRssBytes: number }> {
  const [seconds, kib] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number) as [number, number];
  return { seconds, peakRssBytes: kib * 1024 };
}

/** The command a user runs: the package's launcher (see bin/tsbuild), which starts node itself. */
export const tsbuildCommand = (): string => join(repoRoot(), 'bin/tsbuild');

/** `path` with the folder of the node running the bench first, so the launcher starts that node. */
export function withNodeFirst(path: string | undefined): string {
  return [dirname(process.execPath), ...(path ?? '').split(':').filter((dir) => dir !== '')].join(':');
}

/** tsbuild as root on this host. */
class HostRunner implements TsbuildRunner {
  readonly how = 'as root on the host';

  async prepare(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
  }

  async run(args: readonly string[], env: Readonly<Record<string, string>>, _reads: readonly string[], timeFile: string): Promise<TimedRun> {
    const { seconds, stderr } = await runCommand(TIME, ['-f', TIME_FORMAT, '-o', timeFile, tsbuildCommand(), ...args], { env: { ...process.env, ...env, PATH: withNodeFirst(process.env.PATH) } });
    return { seconds, peakRssBytes: (await readTimeFile(timeFile)).peakRssBytes, output: stderr };
  }
}

/**
 * Lets everyone search (not list) each folder above `path` up to and including `top` (the bench's
 * own work folder), so an unprivileged user reaches it; folders above `top` are left as they are.
 */
async function allowSearch(path: string, top: string): Promise<void> {
  if (relative(top, path).startsWith('..')) throw new Error(`${path} is outside the bench's folder ${top}`);
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) await chmod(dir, (mode & 0o7777) | 0o001);
    if (dir === top || dir === dirname(dir)) return;
  }
}

/** tsbuild as an unprivileged user with subordinate ids, which enters a user namespace of its own. */
class UserRunner implements TsbuildRunner {
  how = `as the unprivileged user ${BENCH_USER}`;
  private user: TestUser | undefined;
  private dir = '';

  async prepare(dir: string): Promise<void> {
    const user = await ensureUser(BENCH_USER, true);
    if (user.subuids === undefined) throw new Error(`${BENCH_USER} has no subordinate ids in /etc/subuid`);
    this.user = user;
    this.dir = dir;
    this.how = `as the unprivileged user ${user.name} (uid ${user.uid}, subordinate ids ${user.subuids.start}-${user.subuids.start + user.subuids.count - 1})`;
    for (const sub of [dir, join(dir, 'home'), join(dir, 'tmp')]) {
      await mkdir(sub, { recursive: true });
      await chown(sub, user.uid, user.gid);
    }
    await allowSearch(dir, dirname(dir));
  }

  async run(args: readonly string[], env: Readonly<Record<string, string>>, reads: readonly string[], timeFile: string): Promise<TimedRun> {
    const user = this.user;
    if (user === undefined) throw new Error('the rootless runner was not prepared');
    const dir = this.dir;
    for (const path of reads) await allowSearch(path, dirname(dir));
    const started = performance.now();
    const result = await runAs(user, TIME, ['-f', TIME_FORMAT, '-o', timeFile, tsbuildCommand(), ...args], {
      HOME: join(dir, 'home'), TMPDIR: join(dir, 'tmp'), PATH: withNodeFirst('/usr/sbin:/usr/bin:/sbin:/bin'), ...env,
    }, dir);
    const seconds = (performance.now() - started) / 1000;
    if (result.code !== 0) throw new Error(`tsbuild ${args.join(' ')} as ${user.name} exited with ${result.code}: ${lastLines(result.stdout + result.stderr)}`);
    return { seconds, peakRssBytes: (await readTimeFile(timeFile)).peakRssBytes, output: result.stderr };
  }
}

/** tsbuild in place, as root of a new pod for every command; its folders are bound at the same paths. */
class PodRunner implements TsbuildRunner {
  readonly how = 'as root of a disposable unprivileged pod (runc, no CAP_SYS_ADMIN)';
  private pods = 0;
  private dir = '';

  /** `scratch`: where the pods' bundles go, outside `dir`, which is bound into them. */
  constructor(private readonly scratch: string) {}

  async prepare(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await mkdir(this.scratch, { recursive: true });
    this.dir = dir;
  }

  async run(args: readonly string[], env: Readonly<Record<string, string>>, reads: readonly string[], timeFile: string): Promise<TimedRun> {
    const pod = await makePod(this.scratch, `pod-${this.pods++}`);
    try {
      // The pod's files were just written: flush them now, not during the measured build.
      await runCommand('sync', ['--file-system', pod.rootfs]);
      const own: Bind = { source: this.dir, destination: this.dir, readonly: false };
      const binds = [own, ...reads.map((path): Bind => ({ source: path, destination: path, readonly: true }))];
      const result = await runPod(pod, 'root', tsbuildArgs(...args), binds, {
        env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
        runtimePrefix: [TIME, '-f', TIME_FORMAT, '-o', timeFile],
      });
      if (result.code !== 0) throw new Error(`tsbuild ${args.join(' ')} in a pod exited with ${result.code}: ${lastLines(result.output)}`);
      return { ...(await readTimeFile(timeFile)), output: result.output };
    } finally {
      await rm(pod.bundle, { recursive: true, force: true });
    }
  }
}

/** The runner of one row; `scratch` is a folder of its own for what is not tsbuild's. */
export function runnerFor(isolation: IsolationRow, scratch: string): TsbuildRunner {
  switch (isolation) {
    case 'oci':
    case 'chroot':
      return new HostRunner();
    case 'rootless':
      return new UserRunner();
    case 'none':
      return new PodRunner(scratch);
  }
}
