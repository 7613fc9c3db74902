/**
 * The launcher: started by util-linux `unshare` as PID 1 of new mount, pid, uts, ipc (and, unless
 * the step uses the host network, net) namespaces, it reads its config from the control socket,
 * builds the step's file system view and root, hands the network namespace to slirp4netns when
 * asked, drops to the step's ids and capabilities with no_new_privs and the seccomp filter, and
 * execs the command, which becomes the namespace's PID 1 (when it exits, the kernel kills the rest
 * of the namespace). Everything it loads is loaded before the root changes. Told to serve
 * (`config.serve`), it stays root with the default capabilities and, instead of exec'ing, serves
 * steps (step-server.cts) on its stdin and stdout, each spawned with the step's ids.
 */
import { openSync, readFileSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { limitBoundingSet, defaultCapabilities, setCapabilities } from './capabilities.js';
import { sendLine, readLine } from './control-channel.js';
import { errorMessage, networkReady, networkRequest, startedMessage, stepStderrFd, type LauncherConfig } from './config.js';
import { execCommand, resetSignals } from './exec-command.js';
import { libc } from '../../../layers/native/libc.js';
import { bindLibc, serveSteps, type Libc } from '../step-server.cjs';
import { bringUpLoopback } from './loopback.js';
import { enterRoot, mountStepFilesystems } from './mounts.js';
import { stepSeccompFilter } from './seccomp-policy.js';
import {
  addressOf, chdir, closeOnExecFrom, dup2, inheritable, prctl, prctlPointer, sethostname, setgroups, setresgid, setresuid,
} from './syscalls.js';

const PR_SET_PDEATHSIG = 1;
const PR_SET_NO_NEW_PRIVS = 38;
const PR_SET_SECCOMP = 22;
const SECCOMP_MODE_FILTER = 2;
const SIGKILL = 9;

/** The parent pid field of a /proc/PID/stat text. */
function parentPid(stat: string): number {
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * This process's pid as the host's /proc (still mounted) sees it, and a way to tell later whether
 * the parent (unshare) is still the same process: the host's /proc/PID/stat, kept open, shows a
 * new parent pid once this process has been re-parented.
 */
function hostView(): { pid: number; parentAlive: () => boolean } {
  const statFd = openSync('/proc/self/stat', 'r');
  const readStat = (): string => {
    const buffer = Buffer.alloc(4096);
    return buffer.subarray(0, readSync(statFd, buffer, 0, buffer.length, 0)).toString('utf8');
  };
  const parent = parentPid(readStat());
  return { pid: Number(readlinkSync('/proc/self')), parentAlive: () => parentPid(readStat()) === parent };
}

function loadSeccompFilter(filter: Buffer): void {
  // struct sock_fprog: the instruction count, then a pointer to the instructions
  const program = Buffer.alloc(16);
  program.writeUInt16LE(filter.length / 8, 0);
  program.writeBigUInt64LE(addressOf(filter), 8);
  prctlPointer(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, program);
}

/** Everything up to the exec; throws with a message for tsbuild. */
function prepare(config: LauncherConfig): void {
  const filter = stepSeccompFilter();
  const lastCapability = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  const host = hostView();
  if (config.network === 'slirp4netns') sendLine(`${networkRequest} ${host.pid}`);

  mountStepFilesystems(config);
  enterRoot(config.rootfs);
  sethostname(config.hostname);
  if (config.network !== 'host') bringUpLoopback();
  if (config.network === 'slirp4netns' && readLine() !== networkReady) throw new Error('the network was not set up');
  try {
    chdir(config.cwd);
  } catch (error) {
    throw new Error(`cannot change to the working directory ${config.cwd}: ${(error as NodeJS.ErrnoException).code}`);
  }

  limitBoundingSet(defaultCapabilities, lastCapability);
  if (config.switchIds && !config.serve) {
    setgroups(config.additionalGids);
    setresgid(config.gid);
    setresuid(config.uid);
  }
  const uid = config.switchIds && !config.serve ? config.uid : 0;
  setCapabilities(uid === 0 ? defaultCapabilities : 0n);
  // a credential change cleared the parent death signal that unshare --kill-child set; unshare
  // dies with tsbuild, so if it died before this point, stop here
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!host.parentAlive()) process.exit(1);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  loadSeccompFilter(filter);
  // A server keeps Node's signal handling (its children get theirs reset when spawned) and its diagnostics on fd 2.
  if (!config.serve) {
    resetSignals();
    dup2(stepStderrFd, 2);
  }
  for (const fd of [0, 1, 2]) inheritable(fd);
  closeOnExecFrom(3);
}

function main(): void {
  let config: LauncherConfig;
  let server: Libc | undefined;
  try {
    config = JSON.parse(readLine()) as LauncherConfig;
    // Bound while the host's root, which holds the C library, is still this process's.
    if (config.serve) server = bindLibc(libc().koffi);
    prepare(config);
    sendLine(startedMessage);
  } catch (error) {
    sendLine(`${errorMessage} ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`);
    process.exit(1);
  }
  if (server) {
    serveSteps(server);
    return;
  }
  const failure = execCommand(config.args, config.env);
  writeSync(2, `${failure.message}\n`);
  process.exit(failure.exitCode);
}

main();
