import type { Stats } from 'node:fs';
import { chmod, lstat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream, peek } from '../../layers/compression.js';
import { TsbuildError } from '../../layers/errors.js';
import { createReadStream } from 'node:fs';
import { PatternMatcher } from '../context/ignore.js';
import { resolveInRoot, splitPath } from '../fs/resolve-path.js';
import { matchSources, type SourceTree } from '../fs/source-tree.js';
import type { CopySource, ResolvedImage } from '../model/sources.js';
import type { CopyStep } from '../model/plan.js';
import { parseChmod } from './chmod.js';
import { copyEntries, type CopyTarget, type SelectedSource } from './copy-entries.js';
import { downloadLimits, downloadUrl, isUrl } from './fetch-url.js';
import { cloneGitSource, isGitSource, parseGitSource } from './git-source.js';
import type { StageRun } from './stage-run.js';
import { resolveOwner } from './user-db.js';
import type { Workspace } from '../workspace/workspace.js';
import type { LayerEntry } from '../../layers/entry.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';

/** What a COPY/ADD needs from the rest of the build. */
export interface CopyContext {
  readonly workspace: Workspace;
  readonly contextTree: SourceTree;
  /** The finished stage a `COPY --from` names. */
  readonly stageRun: (index: number) => StageRun;
  /** The unpacked root filesystem of an image `COPY --from` names. */
  readonly imageRootfs: (contextName: string, image: ResolvedImage) => Promise<string>;
  readonly now: number;
  /** The caller's environment: the download limits, and git's HOME, PATH and SSH settings. */
  readonly env: NodeJS.ProcessEnv;
}

/** A selected source; `archive` marks the unpacked contents of an archive ADD extracted. */
export interface CopySelection extends SelectedSource {
  readonly archive?: boolean;
}

/** Computes the layer entries of a COPY/ADD step in stage `run`, from the sources `selectCopySources` chose. */
export async function copyStepEntries(step: CopyStep, selected: readonly CopySelection[], run: StageRun, ctx: CopyContext): Promise<LayerEntry[]> {
  const rootfs = step.link ? undefined : await run.rootfs();
  const destPath = rootfs ? await resolveInRoot(rootfs, step.dest, 'rootfs', true) : splitPath(step.dest).join('/');
  const existing = async (rel: string): Promise<Stats | undefined> => (rootfs ? lstatOrUndefined(path.join(rootfs, rel)) : undefined);
  const destStats = await existing(destPath);
  const destExistsAsDir = destStats?.isDirectory() ?? false;
  const excludes = new PatternMatcher(step.excludes);
  const target: CopyTarget = {
    destPath,
    // As in BuildKit, files a wildcard matches go one after the other onto a destination that is
    // not a directory (the last one wins); a matched directory makes it one.
    destIsDirectory: step.dest.endsWith('/') || destExistsAsDir || (selected.length > 1 && selected.some((s) => s.match.stats.isDirectory())),
    parents: step.parents,
    ...(step.chown !== undefined ? { owner: resolveOwner(step.chown, run.layers.length > 0 ? rootfs : undefined) } : {}),
    ...(step.chmod !== undefined ? { chmod: parseChmod(step.chmod) } : {}),
    isExcluded: (rel) => excludes.matches(rel),
    canSkipExcludedDir: (rel) => excludes.canSkipDir(rel),
    existing,
    now: ctx.now,
  };
  if (!step.parents) await checkDestination(step, selected, target, destStats);
  const entries = await copySelections(selected, target);
  if (destExistsAsDir || step.parents) return entries;
  // As in BuildKit, the directory a copy creates for a directory's (or an archive's) contents is
  // 0755 and owned by --chown or root, whatever the metadata of the source directory.
  return entries.map((entry) =>
    entry.path === destPath && entry.type === 'directory' ? { ...entry, mode: 0o755, uid: target.owner?.uid ?? 0, gid: target.owner?.gid ?? 0 } : entry,
  );
}

/**
 * Fails as BuildKit does when the copy would need a directory where the image has something
 * else, or would put a file where the image has a directory.
 */
async function checkDestination(step: CopyStep, selected: readonly CopySelection[], target: CopyTarget, destStats: Stats | undefined): Promise<void> {
  const shown = `/${target.destPath}`;
  if (destStats && !destStats.isDirectory() && (step.dest.endsWith('/') || selected.some((s) => s.match.stats.isDirectory()))) {
    throw new TsbuildError('COPY_DEST', `cannot copy into ${shown}: not a directory`);
  }
  for (const { match } of selected) {
    if (match.stats.isDirectory()) continue;
    const file = target.destIsDirectory ? joinPath(target.destPath, path.posix.basename(match.matchedPath)) : target.destPath;
    if ((await target.existing(file))?.isDirectory()) throw new TsbuildError('COPY_DEST', `cannot replace directory /${file} with a file`);
  }
}

function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/**
 * copyEntries over the selections. As in BuildKit, an extracted archive keeps its entries' modes
 * and owners: --chmod and --chown are for copied files, and for the directories the copy creates.
 */
async function copySelections(selected: readonly CopySelection[], target: CopyTarget): Promise<LayerEntry[]> {
  if (!selected.some((s) => s.archive)) return copyEntries(selected, target);
  const { chmod: _chmod, owner, ...archiveTarget } = target;
  const merged = new Map<string, LayerEntry>();
  for (const group of consecutiveGroups(selected)) {
    if (!group[0]!.archive) {
      for (const entry of await copyEntries(group, target)) merged.set(entry.path, entry);
      continue;
    }
    for (const entry of await copyEntries(group, archiveTarget)) {
      const created = owner !== undefined && isSelfOrAncestor(entry.path, target.destPath) && !(await target.existing(entry.path));
      merged.set(entry.path, created ? { ...entry, uid: owner.uid, gid: owner.gid } : entry);
    }
  }
  return [...merged.values()];
}

function isSelfOrAncestor(candidate: string, of: string): boolean {
  return candidate === of || of.startsWith(`${candidate}/`);
}

/** Runs of sources that are all archives, or all not, in order. */
function consecutiveGroups(selected: readonly CopySelection[]): CopySelection[][] {
  const groups: CopySelection[][] = [];
  for (const source of selected) {
    const last = groups[groups.length - 1];
    if (last && Boolean(last[0]!.archive) === Boolean(source.archive)) last.push(source);
    else groups.push([source]);
  }
  return groups;
}

/**
 * What a COPY/ADD would copy, as entries relative to its destination, without looking at the
 * destination stage: the content a cache key covers (`--chown`/`--chmod` are in the key as written).
 */
export async function copySourceEntries(step: CopyStep, selected: readonly SelectedSource[]): Promise<LayerEntry[]> {
  const excludes = new PatternMatcher(step.excludes);
  return copyEntries(selected, {
    destPath: '',
    destIsDirectory: true,
    parents: step.parents,
    isExcluded: (rel) => excludes.matches(rel),
    canSkipExcludedDir: (rel) => excludes.canSkipDir(rel),
    existing: async () => undefined,
    now: 0,
  });
}

/** The files, directories, archives, downloads and heredocs a COPY/ADD reads. */
export async function selectCopySources(step: CopyStep, ctx: CopyContext): Promise<CopySelection[]> {
  const tree = await copySourceTree(step.from, ctx);
  const selected: CopySelection[] = [];
  for (const source of step.sources) {
    if (step.instruction === 'ADD' && isGitSource(source)) {
      selected.push(await cloned(source, step, ctx));
      continue;
    }
    if (step.instruction === 'ADD' && isUrl(source)) {
      selected.push(await downloaded(source, step, ctx));
      continue;
    }
    if (step.instruction === 'COPY' && isUrl(source)) {
      throw new TsbuildError('COPY_URL', `source can't be a URL for COPY: ${source}`);
    }
    const pivot = step.parents ? parentsPivot(source) : 0;
    for (const match of await matchSources(tree, source)) {
      const trimmed = { ...match, matchedPath: splitPath(match.matchedPath).slice(pivot).join('/') };
      const unpack = step.instruction === 'ADD' && step.unpack !== false && match.stats.isFile();
      selected.push(unpack && (await isArchiveFile(path.join(tree.root, match.relPath))) ? await unpacked(tree, match.relPath, ctx) : { tree, match: trimmed });
    }
  }
  for (const content of step.sourceContents) selected.push(await heredocSource(content.path, content.data, ctx));
  return selected;
}

/** The tree a `COPY --from` (or a bind mount's `from=`) reads: the build context, a named context, a stage or an image. */
export async function copySourceTree(from: CopySource, ctx: CopyContext): Promise<SourceTree> {
  switch (from.kind) {
    case 'context':
      return ctx.contextTree;
    case 'local-context':
      return { root: from.dir, scope: 'context', label: `build context "${from.name}"`, isIgnored: () => false };
    case 'stage': {
      const source = ctx.stageRun(from.index);
      const label = source.stage.name !== undefined ? `stage "${source.stage.name}"` : `stage ${from.index}`;
      return { root: await source.rootfs(), scope: 'rootfs', label, isIgnored: () => false };
    }
    case 'image':
      return { root: await ctx.imageRootfs(from.contextName, from.image), scope: 'rootfs', label: `image "${from.contextName}"`, isIgnored: () => false };
  }
}

/** With `--parents`, a `/./` in a source marks where the kept part of its path starts. */
function parentsPivot(source: string): number {
  const at = source.indexOf('/./');
  return at < 0 ? 0 : splitPath(source.slice(0, at)).length;
}

/**
 * Whether ADD extracts a local file: once decompressed, it must start with a valid tar header, as
 * Docker checks. A gzip (or other compressed file) of something else, or a file that does not
 * decompress, is copied as it is.
 */
async function isArchiveFile(file: string): Promise<boolean> {
  const source = createReadStream(file);
  let stream: Readable | undefined;
  try {
    stream = await decompressStream(source);
    const { head } = await peek(stream, tarBlockSize);
    return isTarHeader(head);
  } catch (err) {
    if (err instanceof TsbuildError && err.code === 'TOOL_MISSING') throw err;
    return false;
  } finally {
    stream?.destroy();
    source.destroy();
  }
}

const tarBlockSize = 512;

/** A tar header block: its checksum field matches the sum of its bytes (unsigned or signed, as Go's tar reader accepts). */
function isTarHeader(block: Buffer): boolean {
  if (block.length < tarBlockSize) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/^ +/, '').replace(/[\0 ]+$/, '');
  if (!/^[0-7]+$/.test(field)) return false;
  const expected = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < tarBlockSize; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte < 128 ? byte : byte - 256;
  }
  return expected === unsigned || expected === signed;
}

/** A local archive ADD extracts: unpacked safely into scratch space, then copied as a directory. */
async function unpacked(tree: SourceTree, relPath: string, ctx: CopyContext): Promise<CopySelection> {
  const dir = await ctx.workspace.newDir('add-unpack');
  try {
    await applyLayer(dir, await decompressStream(createReadStream(path.join(tree.root, relPath))), { skipRootNonDirectories: true });
  } catch (err) {
    if (err instanceof TsbuildError) throw new TsbuildError(err.code, `invalid archive ${relPath}: ${err.message}`, { cause: err });
    throw err;
  }
  return { ...(await selectRoot({ root: dir, scope: 'rootfs', label: `archive ${relPath}`, isIgnored: () => false })), archive: true };
}

async function downloaded(url: string, step: CopyStep, ctx: CopyContext): Promise<SelectedSource> {
  const dir = await ctx.workspace.newDir('add-url');
  const file = await downloadUrl(url, dir, step.checksum, downloadLimits(ctx.env));
  const tree: SourceTree = { root: dir, scope: 'context', label: url, isIgnored: () => false };
  const name = path.basename(file);
  return { tree, match: { relPath: name, matchedPath: name, stats: await lstat(file) } };
}

/** A git repository's tree at the ref the source names, added like a directory: its contents. */
async function cloned(source: string, step: CopyStep, ctx: CopyContext): Promise<SelectedSource> {
  const dir = path.join(await ctx.workspace.newDir('add-git'), 'repo');
  const root = await cloneGitSource(parseGitSource(source), dir, { keepGitDir: step.keepGitDir ?? false, env: ctx.env, ...(step.checksum !== undefined ? { checksum: step.checksum } : {}) });
  return selectRoot({ root, scope: 'context', label: source, isIgnored: () => false });
}

async function heredocSource(name: string, data: string, ctx: CopyContext): Promise<SelectedSource> {
  const dir = await ctx.workspace.newDir('heredoc');
  const file = path.join(dir, name);
  await writeFile(file, data);
  await chmod(file, 0o644);
  const tree: SourceTree = { root: dir, scope: 'context', label: 'heredoc', isIgnored: () => false };
  return { tree, match: { relPath: name, matchedPath: name, stats: await lstat(file) } };
}

async function selectRoot(tree: SourceTree): Promise<SelectedSource> {
  return { tree, match: { relPath: '', matchedPath: '', stats: await lstat(tree.root) } };
}
