/**
 * `RUN --mount` values: a comma-separated list of `key=value` options (a bare key means `true`),
 * parsed into typed mounts at plan time so that a bad mount fails before any work.
 */
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { CacheSharing, RunMount } from '../model/mounts.js';
import type { CopySource } from '../model/sources.js';

export interface MountParseContext {
  /** Expands variables in an option value. */
  readonly expand: (word: string) => string;
  /** The step's working directory, which a relative target is resolved against. */
  readonly workdir: string;
  /** Resolves `from=` as `COPY --from` does. */
  readonly resolveFrom: (name: string) => CopySource;
  /** How many ssh mounts of the step come before this one: their default targets are numbered. */
  readonly sshIndex: number;
}

/** The options each type takes, by canonical name. */
const allowedKeys: Readonly<Record<RunMount['type'], readonly string[]>> = {
  bind: ['type', 'target', 'source', 'from', 'readonly', 'readwrite'],
  cache: ['type', 'target', 'id', 'sharing', 'readonly', 'readwrite', 'mode', 'uid', 'gid', 'from', 'source'],
  tmpfs: ['type', 'target'],
  secret: ['type', 'target', 'id', 'env', 'required', 'mode', 'uid', 'gid'],
  ssh: ['type', 'target', 'id', 'required', 'mode', 'uid', 'gid'],
};

/** Alternative spellings of options. */
const aliases: Readonly<Record<string, string>> = { dst: 'target', destination: 'target', src: 'source', ro: 'readonly', rw: 'readwrite' };

/** Options that BuildKit knows but tsbuild cannot honour, with the reason. */
const unsupportedKeys: Readonly<Record<string, string>> = {
  size: 'tmpfs mounts are plain scratch directories here, so a size limit cannot be enforced',
};

/** Splits a `--mount` (or `--secret`, named by `flag`) value into its options; a field may be double-quoted to hold commas. */
export function mountOptions(raw: string, flag = '--mount'): Map<string, string | undefined> {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (const ch of raw) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ',' && !quoted) {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  if (quoted) throw new TsbuildError('BAD_MOUNT', `${flag}=${raw}: unterminated quote`);
  fields.push(field);
  const options = new Map<string, string | undefined>();
  for (const text of fields) {
    if (text.trim() === '') continue;
    const eq = text.indexOf('=');
    const name = (eq < 0 ? text : text.slice(0, eq)).trim().toLowerCase();
    const key = Object.hasOwn(aliases, name) ? aliases[name]! : name;
    if (options.has(key)) throw new TsbuildError('BAD_MOUNT', `${flag}=${raw}: option "${name}" given twice`);
    options.set(key, eq < 0 ? undefined : text.slice(eq + 1));
  }
  return options;
}

/** The `from=` name of a bind or cache mount value, taken literally like `COPY --from`, or undefined. */
export function mountFrom(raw: string): string | undefined {
  const options = mountOptions(raw);
  return ['bind', 'cache'].includes(options.get('type') ?? 'bind') ? options.get('from') : undefined;
}

/** Parses and checks one `--mount` value. */
export function parseRunMount(raw: string, ctx: MountParseContext): RunMount {
  const options = mountOptions(raw);
  const fail = (message: string): never => {
    throw new TsbuildError('BAD_MOUNT', `--mount=${raw}: ${message}`);
  };
  const type = options.has('type') ? ctx.expand(options.get('type') ?? '') : 'bind';
  if (!Object.hasOwn(allowedKeys, type)) fail(`unknown mount type "${type}" (expected bind, cache, tmpfs, secret or ssh)`);
  const mountType = type as RunMount['type'];
  for (const key of options.keys()) {
    if (Object.hasOwn(unsupportedKeys, key)) fail(`option "${key}" is not supported: ${unsupportedKeys[key]}`);
    if (!allowedKeys[mountType].includes(key)) fail(`unknown option "${key}" for type=${mountType}`);
  }
  const text = (key: string): string | undefined => {
    if (!options.has(key)) return undefined;
    const value = options.get(key);
    if (value === undefined) fail(`option "${key}" needs a value`);
    return ctx.expand(value!);
  };
  const flag = (key: string): boolean | undefined => {
    if (!options.has(key)) return undefined;
    const value = options.get(key);
    return value === undefined ? true : parseBool(ctx.expand(value), () => fail(`option "${key}" must be true or false, not "${value}"`));
  };
  const number = (key: string, pattern: RegExp, radix: number, fallback: number): number => {
    const value = text(key);
    if (value === undefined) return fallback;
    if (!pattern.test(value)) fail(`invalid ${key} "${value}"`);
    return parseInt(value, radix);
  };
  const readonly = (): boolean => {
    const ro = flag('readonly');
    const rw = flag('readwrite');
    if (ro !== undefined && rw !== undefined && ro === rw) fail('readonly and readwrite contradict each other');
    return ro ?? (rw === undefined ? undefined : !rw) ?? mountType === 'bind';
  };
  const target = (): string | undefined => {
    const value = text('target');
    if (value === undefined) return undefined;
    if (value.trim() === '') fail('target must not be empty');
    const absolute = path.posix.resolve(ctx.workdir, value);
    if (absolute === '/') fail('cannot mount over /');
    return absolute;
  };
  const requiredTarget = (): string => target() ?? fail('target is required');
  const owner = (defaultMode: number): { mode: number; uid: number; gid: number } => ({
    mode: number('mode', /^[0-7]{1,4}$/, 8, defaultMode),
    uid: number('uid', /^\d+$/, 10, 0),
    gid: number('gid', /^\d+$/, 10, 0),
  });
  switch (mountType) {
    case 'bind': {
      const from = options.get('from');
      return { type: 'bind', target: requiredTarget(), source: text('source') ?? '.', from: from === undefined ? { kind: 'context' } : ctx.resolveFrom(from), readwrite: !readonly() };
    }
    case 'cache': {
      if (options.has('source') && !options.has('from')) fail('source needs from for type=cache: it names a path in from');
      const from = options.get('from');
      const seed = from === undefined ? undefined : { from: ctx.resolveFrom(from), source: text('source') ?? '.' };
      const mountTarget = requiredTarget();
      const sharing = text('sharing') ?? 'shared';
      if (!['shared', 'private', 'locked'].includes(sharing)) fail(`invalid sharing "${sharing}" (expected shared, private or locked)`);
      const id = text('id') || mountTarget;
      return { type: 'cache', target: mountTarget, id, sharing: sharing as CacheSharing, readonly: readonly(), ...owner(0o755), ...(seed ? { seed } : {}) };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target: requiredTarget() };
    case 'secret': {
      const mountTarget = target();
      const env = text('env');
      if (env !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env)) fail(`invalid variable name "${env}"`);
      const id = text('id') || (mountTarget !== undefined ? path.posix.basename(mountTarget) : fail('id or target is required'));
      const fileTarget = mountTarget ?? (env === undefined ? `/run/secrets/${id}` : undefined);
      return {
        type: 'secret',
        id,
        ...(fileTarget !== undefined ? { target: fileTarget } : {}),
        ...(env !== undefined ? { env } : {}),
        required: flag('required') ?? false,
        ...owner(0o400),
      };
    }
    case 'ssh':
      return { type: 'ssh', id: text('id') || 'default', target: target() ?? `/run/buildkit/ssh_agent.${ctx.sshIndex}`, required: flag('required') ?? false, ...owner(0o600) };
  }
}

/**
 * Checks the mounts of one step together: no two may share a target, and none may be inside
 * another (its mount point would have to be made in the other mount's source).
 */
export function checkMountTargets(mounts: readonly RunMount[]): void {
  const targets = mounts.flatMap((mount) => (mount.target === undefined ? [] : [mount.target]));
  for (const [i, target] of targets.entries()) {
    for (const other of targets.slice(i + 1)) {
      if (other === target) throw new TsbuildError('BAD_MOUNT', `two mounts at ${target}`);
      const [outer, inner] = target.length < other.length ? [target, other] : [other, target];
      if (inner.startsWith(`${outer}/`)) throw new TsbuildError('BAD_MOUNT', `mount target ${inner} is inside the target of another mount, ${outer}: nested mounts are not supported`);
    }
  }
}

/** Go's boolean spellings, as BuildKit accepts them. */
function parseBool(value: string, invalid: () => never): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  return invalid();
}
