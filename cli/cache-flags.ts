import { TsbuildError } from '../builder/index.js';

/** Where the build cache is read and written, from `--cache-dir`, `--cache-repo`, `--cache-from` and `--cache-to`. */
export interface CacheLocations {
  readonly dir?: string;
  readonly repository?: string;
  readonly repositoryUse?: { readonly lookups: boolean; readonly publishes: boolean; readonly mode: 'min' | 'max' };
}

type CacheSpec = { readonly type: 'registry'; readonly ref: string; readonly mode?: 'min' | 'max' } | { readonly type: 'local'; readonly dir: string };

/**
 * Maps buildx's `--cache-from`/`--cache-to` onto tsbuild's two caches: `type=local` names the build
 * cache directory (read and written, like `--cache-dir`), `type=registry` the cache repository
 * (`--cache-repo`), looked up when named by `--cache-from` and written when named by `--cache-to`.
 * Each cache is one place: two different directories or repositories are refused.
 */
export function cacheSettings(flags: { cacheDir?: string | undefined; cacheRepo?: string | undefined; cacheFrom: readonly string[]; cacheTo: readonly string[] }): CacheLocations {
  const from = flags.cacheFrom.map((text) => parseCacheSpec('cache-from', text));
  const to = flags.cacheTo.map((text) => parseCacheSpec('cache-to', text));
  const dirs = [...(flags.cacheDir !== undefined ? [flags.cacheDir] : []), ...[...from, ...to].flatMap((s) => (s.type === 'local' ? [s.dir] : []))];
  const repos = [...(flags.cacheRepo !== undefined ? [flags.cacheRepo] : []), ...[...from, ...to].flatMap((s) => (s.type === 'registry' ? [s.ref] : []))];
  const cacheDir = single(dirs, 'cache directory', '--cache-dir, --cache-from type=local,src= and --cache-to type=local,dest=');
  const cacheRepo = single(repos, 'cache repository', '--cache-repo, --cache-from type=registry,ref= and --cache-to type=registry,ref=');
  const registryFrom = from.some((s) => s.type === 'registry');
  const registryTo = to.find((s): s is Extract<CacheSpec, { type: 'registry' }> => s.type === 'registry');
  // --cache-repo alone reads and writes; --cache-from/--cache-to say which.
  const use =
    cacheRepo === undefined || (!registryFrom && registryTo === undefined)
      ? undefined
      : { lookups: registryFrom || flags.cacheRepo !== undefined, publishes: registryTo !== undefined || flags.cacheRepo !== undefined, mode: registryTo?.mode ?? (flags.cacheRepo !== undefined ? 'max' : 'min') };
  return { ...(cacheDir !== undefined ? { dir: cacheDir } : {}), ...(cacheRepo !== undefined ? { repository: cacheRepo } : {}), ...(use ? { repositoryUse: use } : {}) };
}

function single(values: readonly string[], what: string, flags: string): string | undefined {
  const distinct = [...new Set(values)];
  if (distinct.length > 1) throw new TsbuildError('BAD_FLAG', `one ${what} per build, but ${flags} name ${distinct.join(' and ')}: give them all the same one`);
  return distinct[0];
}

const keysByType: Readonly<Record<string, Readonly<Record<'cache-from' | 'cache-to', readonly string[]>>>> = {
  registry: { 'cache-from': ['type', 'ref'], 'cache-to': ['type', 'ref', 'mode'] },
  local: { 'cache-from': ['type', 'src'], 'cache-to': ['type', 'dest', 'mode'] },
};

function parseCacheSpec(flag: 'cache-from' | 'cache-to', text: string): CacheSpec {
  const bad = (why: string): TsbuildError => new TsbuildError('BAD_FLAG', `invalid --${flag} "${text}": ${why}`);
  const fields = new Map<string, string>();
  // buildx takes a bare registry reference for type=registry,ref=…
  const parts = text.includes('=') ? text.split(',') : ['type=registry', `ref=${text}`];
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(`expected key=value, got "${part}"`);
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const type = fields.get('type') ?? '';
  const known = keysByType[type]?.[flag];
  if (known === undefined) throw bad(`unsupported cache type "${type}" (supported: registry, local)`);
  const unknown = [...fields.keys()].find((key) => !known.includes(key));
  if (unknown !== undefined) throw bad(`unsupported key "${unknown}" for type=${type} (supported: ${known.slice(1).join(', ')})`);
  const mode = fields.get('mode');
  if (mode !== undefined && mode !== 'min' && mode !== 'max') throw bad(`mode must be min or max, got "${mode}"`);
  if (type === 'local') {
    // The local build cache keeps every step, as mode=max does.
    if (mode === 'min') throw bad('the local build cache keeps every step: mode=min is not supported for type=local, drop it or use mode=max');
    const dir = fields.get(flag === 'cache-from' ? 'src' : 'dest');
    if (!dir) throw bad(`${flag === 'cache-from' ? 'src' : 'dest'}=DIR is required`);
    return { type: 'local', dir };
  }
  const ref = fields.get('ref');
  if (!ref) throw bad('ref=REGISTRY/REPO is required');
  if (/[:@][^/]*$/.test(ref.slice(ref.indexOf('/') + 1))) {
    throw bad(`ref names a repository, not a tag: tsbuild stores one tag per cached step there; write e.g. ref=${ref.replace(/[:@][^/]*$/, '')}/buildcache`);
  }
  return { type: 'registry', ref, ...(mode !== undefined ? { mode } : {}) };
}
