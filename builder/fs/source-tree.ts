import type { Stats } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { hasWildcard, matchPattern } from './glob.js';
import { resolveInRoot, splitPath, type RootScope } from './resolve-path.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';
import type { ContentDigests } from '../context/content-digests.js';

/** A directory tree that COPY/ADD read from: the build context, or another stage's root filesystem. */
export interface SourceTree {
  readonly root: string;
  readonly scope: RootScope;
  /** How errors name the tree, e.g. `build context` or `stage "builder"`. */
  readonly label: string;
  /** Paths hidden from the build (`.dockerignore`), root-relative. */
  isIgnored(relPath: string): boolean;
  /**
   * Whether an ignored directory holds nothing a `!` exception re-includes, so its contents need
   * not be looked at. When absent, ignored directories are searched for re-included paths.
   */
  canSkipDir?(relPath: string): boolean;
  /** Remembered content digests of the tree's files, so that a cache probe need not read unchanged files. */
  readonly digests?: ContentDigests;
}

/** One source a COPY pattern selected. */
export interface SourceMatch {
  /** Real root-relative path, symlinks resolved. */
  readonly relPath: string;
  /** Root-relative path as matched (before following a final symlink), used by `--parents`. */
  readonly matchedPath: string;
  readonly stats: Stats;
}

/**
 * Selects the sources a COPY/ADD argument names: a path, or a pattern with wildcards in any
 * component. Symlinks are followed to their targets, which must stay inside a build context.
 * As in BuildKit, a pattern that matches nothing selects nothing, while a missing path is an error.
 */
export async function matchSources(tree: SourceTree, source: string): Promise<SourceMatch[]> {
  const components = lexicalComponents(source);
  const wildcard = hasWildcard(source);
  const matched = wildcard ? await expandPattern(tree, components) : [components.join('/')];
  const results: SourceMatch[] = [];
  for (const matchedPath of matched) {
    const relPath = await resolveInRoot(tree.root, matchedPath, tree.scope, true);
    // An ignored directory is still there when a `!` exception re-includes something inside it.
    if ((tree.isIgnored(matchedPath) || tree.isIgnored(relPath)) && !(await hasVisibleDescendant(tree, relPath))) continue;
    const stats = await lstatOrUndefined(path.join(tree.root, relPath));
    if (stats) results.push({ relPath, matchedPath, stats });
  }
  if (results.length === 0 && !wildcard) {
    throw new TsbuildError('SOURCE_NOT_FOUND', `${JSON.stringify(source)} not found in ${tree.label}`);
  }
  return results;
}

/** Root-relative components of a source, refusing `..` that climbs out of a build context. */
function lexicalComponents(source: string): string[] {
  const out: string[] = [];
  for (const part of splitPath(source)) {
    if (part !== '..') out.push(part);
    else if (out.length > 0) out.pop();
    else throw new TsbuildError('OUTSIDE_CONTEXT', `forbidden path outside the build context: ${source}`);
  }
  return out;
}

/**
 * The paths a pattern matches, as BuildKit finds them: the components before the first wildcard
 * are a plain path (symlinks followed), the rest are matched against the tree below it, which is
 * walked without following symlinks. A missing plain part is an error, as in BuildKit.
 */
async function expandPattern(tree: SourceTree, components: string[]): Promise<string[]> {
  const first = components.findIndex(hasWildcard);
  const base = components.slice(0, first).join('/');
  const realBase = await resolveInRoot(tree.root, base, tree.scope, true);
  if ((await lstatOrUndefined(path.join(tree.root, realBase))) === undefined) {
    throw new TsbuildError('SOURCE_NOT_FOUND', `${JSON.stringify(base)} not found in ${tree.label}`);
  }
  // Below the base, a path is matched under its real name: no symlink is followed on the way.
  let candidates = [{ shown: base, real: realBase }];
  for (const component of components.slice(first)) {
    const next: { shown: string; real: string }[] = [];
    for (const dir of candidates) {
      if (dir.shown !== base && !(await lstatOrUndefined(path.join(tree.root, dir.real)))?.isDirectory()) continue;
      for (const name of await listDir(path.join(tree.root, dir.real))) {
        if (!matchPattern(component, name)) continue;
        const shown = join(dir.shown, name);
        const real = join(dir.real, name);
        if (!tree.isIgnored(shown) || (await hasVisibleDescendant(tree, real))) next.push({ shown, real });
      }
    }
    candidates = next;
  }
  return candidates.map((c) => c.shown);
}

/**
 * Whether the real root-relative path is a directory holding some path the tree does not ignore,
 * as a `!` exception in `.dockerignore` can re-include a path below an ignored directory.
 */
export async function hasVisibleDescendant(tree: SourceTree, relDir: string): Promise<boolean> {
  if (tree.canSkipDir?.(relDir)) return false;
  let children;
  try {
    children = await readdir(path.join(tree.root, relDir), { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
  for (const child of children) {
    const rel = join(relDir, child.name);
    if (!tree.isIgnored(rel)) return true;
    if (child.isDirectory() && (await hasVisibleDescendant(tree, rel))) return true;
  }
  return false;
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

async function listDir(abs: string): Promise<string[]> {
  try {
    return (await readdir(abs)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}
