/**
 * Connects a step's network namespace to the outside with slirp4netns (user-mode networking: the
 * step gets tap0 with 10.0.2.100, gateway 10.0.2.2, DNS forwarder 10.0.2.3), refusing connections
 * to the host's loopback. Runs on tsbuild's side.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { TsbuildError } from '../../../layers/errors.js';
import { systemBinDirs } from '../../host/host-tools.js';

export interface NetworkHelper {
  /** Ends slirp4netns (closing its exit fd). */
  stop(): void;
}

/**
 * Starts slirp4netns for the network namespace of host pid `pid` and resolves once tap0 is
 * configured. fd 3 is its ready fd, fd 4 its exit fd: when tsbuild closes it, or dies, slirp4netns
 * exits.
 */
export function startSlirp4netns(path: string, pid: number): Promise<NetworkHelper> {
  const args = ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', '--exit-fd=4', String(pid), 'tap0'];
  const child = spawn(path, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: systemBinDirs.join(':') } });
  const exitFd = child.stdio[4] as Writable;
  const helper: NetworkHelper = {
    stop: () => {
      exitFd.destroy();
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
  let diagnostics = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    diagnostics += text;
  });
  return new Promise<NetworkHelper>((resolve, reject) => {
    const fail = (detail: string): void => {
      helper.stop();
      reject(new TsbuildError('ISOLATION', `slirp4netns could not connect the step's network: ${detail}`));
    };
    (child.stdio[3] as Readable).once('data', () => resolve(helper));
    child.once('error', (error) => fail(error.message));
    child.once('exit', (code) => fail(diagnostics.trim().split('\n').pop() || `exit code ${code}`));
  });
}
