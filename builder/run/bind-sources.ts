import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sha256Digest } from '../../layers/digest.js';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { applyLayer } from '../../layers/apply-layer.js';
import { layerTar } from '../../layers/tar-writer.js';
import { canonicalJson } from '../../layers/canonical-json.js';
import { contentChecksum, type ContentChecksum } from '../cache/content-checksum.js';
import { copyEntries } from '../exec/copy-entries.js';
import { copySourceTree, type CopyContext } from '../exec/copy-step.js';
import type { Workspace } from '../workspace/workspace.js';
import { matchSources, type SourceMatch, type SourceTree } from '../fs/source-tree.js';
import type { BindRunMount, CacheRunMount, RunMount } from '../model/mounts.js';

/** What a bind mount shows, or a new cache mount starts with: its source in its tree, and the entries below it. */
export interface BindSource {
  readonly mount: BindRunMount | CacheRunMount;
  readonly tree: SourceTree;
  readonly match: SourceMatch;
  /** Relative to the target (a file source is one entry, its name), `.dockerignore` applied. */
  readonly entries: readonly LayerEntry[];
}

/**
 * Finds the source of every bind mount and every cache mount's seed, as COPY finds its sources: a
 * path in the context that `.dockerignore` hides is not found, and one that leaves the context is
 * refused.
 */
export async function selectBindSources(mounts: readonly RunMount[], ctx: CopyContext): Promise<BindSource[]> {
  const sources: BindSource[] = [];
  for (const mount of mounts) {
    if (mount.type !== 'bind' && mount.type !== 'cache') continue;
    const origin = mount.type === 'bind' ? mount : mount.seed;
    if (origin === undefined) continue;
    const tree = await copySourceTree(origin.from, ctx);
    const [match, ...more] = await matchSources(tree, origin.source);
    if (match === undefined) throw new TsbuildError('SOURCE_NOT_FOUND', `${mount.type} mount source ${JSON.stringify(origin.source)} matches nothing in ${tree.label}`);
    if (more.length > 0) throw new TsbuildError('BAD_MOUNT', `${mount.type} mount source ${JSON.stringify(origin.source)} matches more than one path in ${tree.label}`);
    const entries = await copyEntries([{ tree, match: match! }], {
      destPath: '',
      destIsDirectory: true,
      parents: false,
      isExcluded: () => false,
      existing: async () => undefined,
      now: 0,
    });
    sources.push({ mount, tree, match: match!, entries });
  }
  return sources;
}

/** The checksum of everything the bind mounts show, for the step's cache key; undefined without bind mounts. */
export async function bindSourcesChecksum(sources: readonly BindSource[]): Promise<ContentChecksum | undefined> {
  if (sources.length === 0) return undefined;
  const sums = await Promise.all(sources.map((source) => contentChecksum(source.entries)));
  return {
    digest: sha256Digest(canonicalJson(sources.map((source, i) => [source.mount.target, sums[i]!.digest]))),
    files: new Map(sources.flatMap((source, i) => [...sums[i]!.files].map(([file, digest]) => [`${source.mount.target}/${file}`, digest] as const))),
  };
}

/**
 * The host path to bind for a source: the source itself when the mount is read-only and hides
 * nothing, else a private copy of its entries (so `.dockerignore` holds and writes are discarded).
 */
export async function bindSourcePath(source: BindSource, workspace: Workspace): Promise<string> {
  const original = path.join(source.tree.root, source.match.relPath);
  const readwrite = source.mount.type === 'bind' && source.mount.readwrite;
  if (!readwrite && !(await hidesSomething(source.tree, source.match.relPath))) return original;
  const dir = await workspace.newDir('bind-copy');
  await applyLayer(dir, layerTar(source.entries));
  return source.match.stats.isDirectory() ? dir : path.join(dir, path.posix.basename(source.match.matchedPath));
}

/** Whether the tree ignores any path below `relDir`. */
async function hidesSomething(tree: SourceTree, relDir: string): Promise<boolean> {
  let children;
  try {
    children = await readdir(path.join(tree.root, relDir), { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
  for (const child of children) {
    const rel = relDir === '' ? child.name : `${relDir}/${child.name}`;
    if (tree.isIgnored(rel)) return true;
    if (child.isDirectory() && (await hidesSomething(tree, rel))) return true;
  }
  return false;
}
