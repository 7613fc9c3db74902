import { chmod, chown, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { Workspace } from '../workspace/workspace.js';
import type { BindMount } from '../isolation/backend.js';
import { bindSourcePath, type BindSource } from './bind-sources.js';
import { openCacheMount } from './cache-mounts.js';
import type { RunMount, SecretRunMount, SshRunMount } from '../model/mounts.js';
import { secretDir } from './secrets.js';
import { relayAgent } from './ssh-agents.js';

/** What a step's mounts need from the build. */
export interface MountContext {
  readonly workspace: Workspace;
  /** Where cache mounts keep their directories between builds. */
  readonly cacheDir: string;
  /** Secret contents by id. */
  readonly secrets: ReadonlyMap<string, Buffer>;
  /** SSH agent sockets by id (see ssh-agents.ts). */
  readonly sshAgents: ReadonlyMap<string, string>;
  /** The sources of the step's bind mounts (see bind-sources.ts). */
  readonly bindSources: readonly BindSource[];
}

/** A mount as the backend binds it, and what its mount point must be. */
export interface MountBind extends BindMount {
  readonly kind: 'directory' | 'file';
}

export interface PreparedMounts {
  /** Parents before the mounts nested in them. */
  readonly binds: readonly MountBind[];
  /** `NAME=value` pairs that secrets with `env=` add to the process's environment. */
  readonly env: readonly string[];
  /** Releases cache locks and removes secret files. */
  release(): Promise<void>;
}

/**
 * Gets a host directory or file ready for every mount of a step: a fresh scratch directory for
 * tmpfs (the backends bind directories, so no size limit), the persistent directory of a cache,
 * the bound source (or its private copy), a secret's content in a read-only file.
 */
export async function prepareMounts(mounts: readonly RunMount[], ctx: MountContext): Promise<PreparedMounts> {
  const binds: MountBind[] = [];
  const env: string[] = [];
  const releases: (() => Promise<void>)[] = [];
  const release = async (): Promise<void> => {
    for (const undo of releases.reverse()) await undo();
  };
  try {
    for (const mount of mounts) {
      switch (mount.type) {
        case 'tmpfs': {
          const dir = await ctx.workspace.newDir('tmpfs');
          await chmod(dir, 0o1777);
          binds.push({ destination: mount.target, source: dir, readonly: false, kind: 'directory' });
          break;
        }
        case 'cache': {
          const seed = ctx.bindSources.find((s) => s.mount === mount)?.entries;
          const cache = await openCacheMount(mount, ctx.cacheDir, ctx.workspace, seed);
          releases.push(() => cache.release());
          binds.push({ destination: mount.target, source: cache.dir, readonly: mount.readonly, kind: 'directory' });
          break;
        }
        case 'bind': {
          const source = ctx.bindSources.find((s) => s.mount === mount);
          if (!source) throw new TsbuildError('INTERNAL', `no source selected for the bind mount at ${mount.target}`);
          const kind = source.match.stats.isDirectory() ? 'directory' : 'file';
          binds.push({ destination: mount.target, source: await bindSourcePath(source, ctx.workspace), readonly: !mount.readwrite, kind });
          break;
        }
        case 'secret':
          await secretMount(mount, ctx, binds, env, releases);
          break;
        case 'ssh':
          await sshMount(mount, ctx, binds, env, releases);
          break;
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  binds.sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0));
  return { binds, env, release };
}

/** Adds a relay to an SSH agent at the target and points `SSH_AUTH_SOCK` there; an agent the build was not given is an error only when required. */
async function sshMount(mount: SshRunMount, ctx: MountContext, binds: MountBind[], env: string[], releases: (() => Promise<void>)[]): Promise<void> {
  const agent = ctx.sshAgents.get(mount.id);
  if (agent === undefined) {
    if (mount.required) throw new TsbuildError('SSH_MISSING', `ssh agent "${mount.id}" is required but the build was not given it (--ssh ${mount.id}[=SOCKET])`);
    return;
  }
  const socket = path.join(await ctx.workspace.newDir('ssh'), 'agent.sock');
  releases.push(await relayAgent(agent, socket, mount));
  binds.push({ destination: mount.target, source: socket, readonly: false, kind: 'file' });
  env.push(`SSH_AUTH_SOCK=${mount.target}`);
}

/** Adds a secret's file and variable; a secret the build was not given is an error only when required. */
async function secretMount(mount: SecretRunMount, ctx: MountContext, binds: MountBind[], env: string[], releases: (() => Promise<void>)[]): Promise<void> {
  const value = ctx.secrets.get(mount.id);
  if (value === undefined) {
    if (mount.required) throw new TsbuildError('SECRET_MISSING', `secret "${mount.id}" is required but the build was not given it (--secret id=${mount.id},src=FILE)`);
    return;
  }
  if (mount.env !== undefined) env.push(`${mount.env}=${value.toString('utf8')}`);
  if (mount.target === undefined) return;
  const store = await secretDir(ctx.workspace, value.length);
  releases.push(() => store.release());
  const file = path.join(store.dir, 'secret');
  await writeFile(file, value, { mode: 0o600 });
  await chown(file, mount.uid, mount.gid);
  await chmod(file, mount.mode);
  binds.push({ destination: mount.target, source: file, readonly: true, kind: 'file' });
}
