import { readFile, rm } from 'node:fs/promises';
import { TsbuildError } from '../../layers/errors.js';
import type { Workspace } from '../workspace/workspace.js';
import { mountPrivateTmpfs, unmountPrivateTmpfs } from '../host/tmpfs.js';
import { mountOptions } from '../frontend/parse-mount.js';

/** A `--secret` value: the id RUN mounts name, and where its content comes from. */
export type SecretSpec =
  | { readonly id: string; readonly kind: 'file'; readonly path: string }
  | { readonly id: string; readonly kind: 'env'; readonly name: string };

/** Parses `id=ID,src=PATH`, `id=ID,env=VAR` or `type=env,id=VAR` (also `source=`). */
export function parseSecretSpec(value: string): SecretSpec {
  const fail = (why: string): never => {
    throw new TsbuildError('BAD_SECRET', `invalid --secret ${value}: ${why}`);
  };
  const options = mountOptions(value, '--secret');
  for (const key of options.keys()) {
    if (!['id', 'type', 'source', 'env'].includes(key)) fail(`unknown key "${key}" (expected id, type, src or env)`);
  }
  const id = options.get('id') || fail('id is required');
  const type = options.get('type') ?? (options.has('env') ? 'env' : 'file');
  if (type === 'env') {
    if (options.has('source')) fail('src cannot be used with type=env');
    return { id, kind: 'env', name: options.get('env') || id };
  }
  if (type !== 'file') fail(`unknown type "${type}" (expected file or env)`);
  if (options.has('env')) fail('env cannot be used with type=file');
  return { id, kind: 'file', path: options.get('source') || fail('src is required') };
}

/** Reads every secret's content now, so a missing file or variable fails the build before any step. */
export async function loadSecrets(specs: readonly SecretSpec[], env: NodeJS.ProcessEnv): Promise<Map<string, Buffer>> {
  const secrets = new Map<string, Buffer>();
  for (const spec of specs) {
    if (secrets.has(spec.id)) throw new TsbuildError('BAD_SECRET', `secret "${spec.id}" given twice`);
    if (spec.kind === 'env') {
      const value = env[spec.name];
      if (value === undefined) throw new TsbuildError('BAD_SECRET', `secret "${spec.id}": environment variable ${spec.name} is not set`);
      secrets.set(spec.id, Buffer.from(value));
      continue;
    }
    try {
      secrets.set(spec.id, await readFile(spec.path));
    } catch (err) {
      throw new TsbuildError('BAD_SECRET', `secret "${spec.id}": cannot read ${spec.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return secrets;
}

/** A directory for one step's secret files, and how to remove it with them. */
export interface SecretDir {
  readonly dir: string;
  release(): Promise<void>;
}

/**
 * A new directory of the workspace for secret files holding up to `bytes`: a private tmpfs where
 * one can be mounted, so the content never reaches a disk and is gone once unmounted; otherwise a
 * plain directory. Either way it is removed on release, or by the sweep of the workspace after a crash.
 */
export async function secretDir(workspace: Workspace, bytes: number): Promise<SecretDir> {
  const dir = await workspace.newDir('secret');
  await mountPrivateTmpfs(dir, bytes);
  return {
    dir,
    release: async () => {
      await unmountPrivateTmpfs(dir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
