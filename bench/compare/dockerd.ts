/**
 * A private dockerd for the bench: its own data root, exec root, pid file and socket under one
 * directory, no bridge and no iptables rules, so it changes nothing on the host. It is stopped by
 * the PID this process started, never by name.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsUnder } from '../../builder/host/mountinfo.js';
import { lastLines, runCommand } from './command.js';

export const DOCKERD = '/usr/sbin/dockerd';
/** The docker.io client (an unrelated `docker` may come first on PATH). */
export const DOCKER = '/usr/bin/docker';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export class Dockerd {
  private constructor(private readonly dir: string, private readonly child: ChildProcess) {}

  /** `unix://…/docker.sock`, for `docker -H`. */
  get host(): string {
    return `unix://${join(this.dir, 'docker.sock')}`;
  }

  static async start(dir: string, insecureRegistry: string): Promise<Dockerd> {
    await mkdir(dir, { recursive: true });
    const logFile = join(dir, 'dockerd.log');
    const log = createWriteStream(logFile);
    await new Promise((resolve) => log.once('open', resolve));
    const child = spawn(DOCKERD, [
      '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '-H', `unix://${join(dir, 'docker.sock')}`, '--bridge=none', '--iptables=false', '--ip6tables=false',
      '--insecure-registry', insecureRegistry,
    ], { stdio: ['ignore', log, log] });
    const daemon = new Dockerd(dir, child);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`dockerd exited at start: ${lastLines(await readFile(logFile, 'utf8'))}`);
      }
      try {
        await daemon.docker(['version', '--format', '{{.Server.Version}}']);
        return daemon;
      } catch (error) {
        if (Date.now() > deadline) {
          await daemon.stop();
          throw new Error(`dockerd did not answer within ${START_TIMEOUT_MS / 1000} s: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** Runs the docker client against this daemon, with BuildKit on. */
  docker(args: readonly string[]): ReturnType<typeof runCommand> {
    return runCommand(DOCKER, ['-H', this.host, ...args], { env: { ...process.env, DOCKER_BUILDKIT: '1' } });
  }

  /**
   * Stops the daemon (SIGTERM to its PID, SIGKILL after a while) and removes its directory, unless
   * something is still mounted under it.
   */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    const mounts = await mountsUnder(this.dir);
    if (mounts.length > 0) throw new Error(`dockerd left ${mounts.length} mounts under ${this.dir}; not removing it`);
    await rm(this.dir, { recursive: true, force: true });
  }
}
