import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { TsbuildError } from '../../layers/errors.js';
import { inPlaceProtectedPaths } from '../rootfs/in-place.js';
import { classifyPath, protectPaths, type ProtectedPaths } from '../rootfs/protected-paths.js';
import type { IsolationBackend, RunResult, RunSpec } from './backend.js';
import { placeBindFiles } from './in-place-files.js';
import type { NodeLauncher } from './node-runtime.js';
import { checkRunSpec } from './run-spec-check.js';
import { nodeCommand } from '../host/this-node.js';

export interface InPlaceBackendOptions {
  /** The same extra protected paths the in-place preparer was given; bind files are never written there. */
  readonly protectedPaths: readonly string[];
  /** Starts this node binary whatever `/` holds (see node-runtime.ts); it sets supplementary groups. The running binary when absent. */
  readonly node?: NodeLauncher;
}

/**
 * Node's `spawn` sets uid and gid but clears the supplementary groups. With groups to set, this
 * script (run by a copy of this node binary and its libraries, so the image need not have any tool
 * or library) takes the ids the parent sends on fd 3, then runs the command as its child and exits
 * with its status.
 */
const groupsWrapper = `
const { readFileSync } = require('node:fs');
const { spawn } = require('node:child_process');
const { constants } = require('node:os');
const spec = JSON.parse(readFileSync(3, 'utf8'));
process.setgroups(spec.groups);
process.setgid(spec.gid);
process.setuid(spec.uid);
const child = spawn(spec.args[0], spec.args.slice(1), { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (error) => {
  process.stderr.write('cannot run ' + spec.args[0] + ': ' + error.message + '\\n');
  process.exit(error.code === 'ENOENT' ? 127 : 126);
});
child.on('exit', (code, signal) => process.exit(code ?? 128 + constants.signals[signal]));
`;

/**
 * `--isolation none`: runs RUN processes directly in this container, whose `/` the in-place
 * preparer made the stage's rootfs, like kaniko. Nothing is isolated: there are no mounts or
 * namespaces, so the process shares this container's `/proc`, `/dev`, `/sys`, network and host name.
 * Bind files are written into place for the run and put back afterwards (see in-place-files.ts);
 * the caller must leave every bind destination out of its snapshots. The process runs in its own
 * process group, which is killed when it exits and on abort; a process that leaves the group
 * (`setsid`) survives both.
 */
export class InPlaceBackend implements IsolationBackend {
  readonly name = 'none' as const;
  private paths: Promise<ProtectedPaths> | undefined;

  constructor(private readonly options: InPlaceBackendOptions) {}

  async run(spec: RunSpec): Promise<RunResult> {
    spec.signal?.throwIfAborted();
    checkRunSpec(spec);
    if (path.resolve(spec.rootfs) !== '/') {
      throw new TsbuildError('ISOLATION', `--isolation=none runs RUN steps only in the stage that owns /, not in ${spec.rootfs}`);
    }
    if (spec.network === 'none') throw new TsbuildError('RUN_UNSUPPORTED', 'RUN --network=none cannot be enforced with --isolation=none');
    this.paths ??= inPlaceProtectedPaths(this.options.protectedPaths).then(protectPaths);
    const paths = await this.paths;
    const files = await placeBindFiles('/', spec.binds, (destination) => classifyPath(paths, destination.slice(1)) === 'protected');
    try {
      return await runProcess(spec, this.options.node);
    } finally {
      await files.restore();
    }
  }
}

/** This node as a NodeLauncher: how it was started, loader and all. */
function thisNode(): NodeLauncher {
  const [command, ...args] = nodeCommand() as [string, ...string[]];
  return { command, args };
}

/**
 * Starts the process in a new process group and settles once it and its output are done; a user
 * with supplementary groups is set up by `node` running the groups wrapper.
 */
export function runProcess(spec: RunSpec, node: NodeLauncher = thisNode()): Promise<RunResult> {
  const env = Object.fromEntries(spec.env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
  const { uid, gid, additionalGids } = spec.user;
  const groups = [...new Set(additionalGids)].filter((g) => g !== gid);
  const [command, ...args] = spec.args as [string, ...string[]];
  const child: ChildProcess =
    groups.length === 0
      ? spawn(command, args, { cwd: spec.cwd, env, uid, gid, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(node.command, [...node.args, '-e', groupsWrapper], { cwd: '/', env: {}, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  if (groups.length > 0) (child.stdio[3] as Writable).end(JSON.stringify({ uid, gid, groups: [gid, ...groups], args: spec.args, cwd: spec.cwd, env }));
  return new Promise<RunResult>((resolve, reject) => {
    let aborted = false;
    let startFailure: NodeJS.ErrnoException | undefined;
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const onAbort = (): void => {
      aborted = true;
      killGroup();
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => spec.stdout(chunk));
    child.stderr?.on('data', (chunk: Buffer) => spec.stderr(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      startFailure = error;
    });
    // Like a container's init: when the process ends, whatever it left running in its group ends too.
    child.on('exit', killGroup);
    child.on('close', (code, signal) => {
      spec.signal?.removeEventListener('abort', onAbort);
      if (aborted) return reject(spec.signal?.reason);
      if (startFailure) {
        spec.stderr(Buffer.from(`cannot run ${command}: ${startFailure.message}\n`));
        return resolve({ exitCode: startFailure.code === 'ENOENT' ? 127 : 126 });
      }
      resolve({ exitCode: code ?? 128 + (signal === null ? 0 : osConstants.signals[signal]) });
    });
  });
}
