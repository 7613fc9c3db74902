import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode } from '../../layers/fs-util.js';
import type { BindMount, RunUser } from './backend.js';
import { identityMappings, mapsId, type OciBindMount, type OciRuntimeConfig, type OciUserNamespace } from './oci-config.js';
import { currentIdMapping } from './userns.js';

/** What the OCI runtime backends share: the container's settings, the runtime's environment, its log and subcommands. */

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Written into a step's scratch directory while its container may exist: which runtime made it and
 * its id, the runtime's state being in the `state` directory beside it. A build that died leaves
 * it behind for the sweep of its workspace (see `deleteLeftoverContainers`).
 */
export const containerRecordName = 'oci-container.json';
export const containerId = /^tsbuild-[0-9a-f]{16}$/;

export interface ContainerRecord {
  readonly runtime: string;
  readonly id: string;
}

/** Room for the bundle, the runtime's state and its log on the scratch tmpfs. */
export const scratchBytes = 16 * 1024 * 1024;

/** Docker's RLIMIT_NOFILE, unless this process may not raise its hard limit that far. */
export const dockerNofile = 1048576;
export const capSysResource = 24n;

/**
 * The open-file limit to give the process: Docker's, capped by ours when we lack CAP_SYS_RESOURCE
 * (which only counts in the initial user namespace: no other may raise a hard limit).
 */
export async function nofileLimit(inUserNamespace: boolean): Promise<number> {
  const status = await readFile('/proc/self/status', 'utf8');
  const effective = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
  if (!inUserNamespace && (effective >> capSysResource) & 1n) return dockerNofile;
  const limits = await readFile('/proc/self/limits', 'utf8');
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(limits)?.[1];
  return hard === undefined || hard === 'unlimited' ? dockerNofile : Math.min(dockerNofile, Number(hard));
}

/**
 * The container's own user namespace when this process runs in one (uid 0 of the namespace an
 * unprivileged build enters): every id mapped here, mapped to itself, so files keep their owners.
 * Undefined in the initial user namespace, where the container shares it.
 */
export async function nestedUserNamespace(): Promise<OciUserNamespace | undefined> {
  if ((await currentIdMapping()).kind === 'host') return undefined;
  const [uidMap, gidMap] = await Promise.all([readFile('/proc/self/uid_map', 'utf8'), readFile('/proc/self/gid_map', 'utf8')]);
  return { uidMappings: identityMappings(uidMap), gidMappings: identityMappings(gidMap) };
}

export async function containerSettings(): Promise<{ userNamespace: OciUserNamespace | undefined; nofile: number }> {
  const userNamespace = await nestedUserNamespace();
  return { userNamespace, nofile: await nofileLimit(userNamespace !== undefined) };
}

/** Refuses a user the nested namespace cannot represent, before the runtime fails less clearly. */
export function checkIdsMapped(user: RunUser, userNamespace: OciUserNamespace): void {
  const unmapped = [
    ...(mapsId(userNamespace.uidMappings, user.uid) ? [] : [`uid ${user.uid}`]),
    ...[user.gid, ...user.additionalGids].filter((gid) => !mapsId(userNamespace.gidMappings, gid)).map((gid) => `gid ${gid}`),
  ];
  if (unmapped.length > 0) {
    throw new TsbuildError(
      'ISOLATION',
      `cannot run as user ${user.uid}:${user.gid}: ${unmapped.join(', ')} not mapped in this user namespace (add subordinate ids to /etc/subuid and /etc/subgid)`,
    );
  }
}

/** Per-mount flags the kernel locks on mounts a user namespace inherits: a remount must repeat them. */
export const lockableFlags = new Set(['nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'strictatime']);

/** The lockable flags of the mount holding `path`: the last-mounted, deepest mount point at or above it. */
export async function lockableFlagsAt(path: string): Promise<string[]> {
  const target = await realpath(path);
  let holder: { point: string; options: string } | undefined;
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    // Fields: mount ID, parent ID, major:minor, root, mount point, per-mount options, ...
    const [, , , , escaped, options] = line.split(' ');
    if (escaped === undefined || options === undefined) continue;
    const point = escaped.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    const covers = point === '/' || target === point || target.startsWith(`${point}/`);
    if (covers && (holder === undefined || point.length >= holder.point.length)) holder = { point, options };
  }
  return holder?.options.split(',').filter((option) => lockableFlags.has(option)) ?? [];
}

/**
 * Bind mounts as the runtime takes them: absolute sources (it would take relative ones as relative
 * to the bundle) and, in a user namespace, the flags the kernel keeps locked, which a read-only
 * remount would otherwise clear.
 */
export async function runtimeBinds(binds: readonly BindMount[], userNamespace: OciUserNamespace | undefined): Promise<OciBindMount[]> {
  const absolute = binds.map((bind) => ({ ...bind, source: resolvePath(bind.source) }));
  if (!userNamespace) return absolute;
  return Promise.all(absolute.map(async (bind) => ({ ...bind, flags: await lockableFlagsAt(bind.source) })));
}

/** One container's files in a step's scratch directory, and the runtime arguments that point at them. */
export interface ContainerFiles {
  readonly id: string;
  readonly bundle: string;
  readonly stateDir: string;
  readonly logFile: string;
  /** `--root`, `--log` and `--log-format`, for every runtime call about this container. */
  readonly globalArgs: readonly string[];
  /** The record by which the sweep of a dead build's workspace deletes the container. */
  readonly record: string;
}

/** Writes a bundle with `config`, and the record of a new container id, into `scratchDir`. */
export async function writeContainerFiles(scratchDir: string, runtimePath: string, config: OciRuntimeConfig): Promise<ContainerFiles> {
  const id = `tsbuild-${randomBytes(8).toString('hex')}`;
  const bundle = join(scratchDir, 'bundle');
  const stateDir = join(scratchDir, 'state');
  const logFile = join(scratchDir, 'runtime.log');
  const record = join(scratchDir, containerRecordName);
  await mkdir(bundle, { recursive: true });
  await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
  await writeFile(record, JSON.stringify({ runtime: runtimePath, id } satisfies ContainerRecord));
  return { id, bundle, stateDir, logFile, globalArgs: ['--root', stateDir, '--log', logFile, '--log-format', 'json'], record };
}

/**
 * Our environment minus what would make the runtime reach outside the bundle: a systemd notify
 * socket (runc would mount it into the rootfs) and socket-activation descriptors (crun passes them on).
 */
export function runtimeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[name];
  return env;
}

/** The messages the runtime logged at error level (its JSON log has one object per line). */
export async function runtimeErrors(logFile: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT')) return [];
    throw error;
  }
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((entry.level === 'error' || entry.level === 'fatal') && typeof entry.msg === 'string') errors.push(entry.msg);
    } catch {
      errors.push(line.trim());
    }
  }
  return errors;
}

/** True when `done` settles within `ms`; the timer never outlives the call. */
export async function settlesWithin(done: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      done.then(() => true, () => true),
      sleep(ms, false, { signal: timer.signal }).catch(() => false),
    ]);
  } finally {
    timer.abort();
  }
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a runtime subcommand to completion, collecting its output. */
export function runtimeCommand(runtimePath: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(runtimePath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: runtimeEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.once('error', (error) => reject(new TsbuildError('ISOLATION', `cannot start ${runtimePath}: ${error.message}`, { cause: error })));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

