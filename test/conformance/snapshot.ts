/**
 * The normalised view of a built image that both builders are compared on: the config fields that
 * matter (no timestamps), one `key = JSON` line each, and the unpacked tree, one line per path.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { treeState } from '../support/tree-state.js';

const run = promisify(execFile);

/** Lines by key: `config.X` and `platform`/`history`/`layers`, `/path` for the tree, `build` for the outcome. */
export type Snapshot = Map<string, string>;

const CONFIG_FIELDS = [
  'User', 'Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal',
  'Healthcheck', 'Shell', 'OnBuild', 'ArgsEscaped',
];

/** umoci could not unpack a layout: a defect of the layout, never an expected build failure. */
export class UnpackError extends Error {}

interface LayoutImage {
  readonly config: Record<string, unknown>;
}

/** Reads the config of the only image in an OCI layout (or the one whose ref name is `refName`). */
async function readImage(layoutDir: string, refName: string): Promise<LayoutImage> {
  const blob = async (digest: string): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(join(layoutDir, 'blobs', ...digest.split(':')), 'utf8')) as Record<string, unknown>;
  const top = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const entry = top.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === refName);
  if (entry === undefined) throw new Error(`${layoutDir} has no image named ${refName}`);
  const manifest = await blob(entry.digest) as { config: { digest: string } };
  return { config: await blob(manifest.config.digest) };
}

/** Drops null, undefined, empty lists and empty objects: absent and empty mean the same to a container. */
function meaningful(value: unknown): boolean {
  if (value === null || value === undefined) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object' && Object.keys(value).length === 0) return false;
  return true;
}

/** Sorts object keys, so that the same value always prints the same. */
function stable(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stable);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, stable((value as Record<string, unknown>)[key])]));
  }
  return value;
}

export function configLines(config: Record<string, unknown>): Snapshot {
  const lines: Snapshot = new Map();
  const platform = [config.os, config.architecture, config.variant].filter((part) => typeof part === 'string' && part !== '').join('/');
  lines.set('platform', JSON.stringify(platform));
  if (typeof config.author === 'string' && config.author !== '') lines.set('author', JSON.stringify(config.author));
  const inner = (config.config ?? {}) as Record<string, unknown>;
  for (const field of CONFIG_FIELDS) {
    if (meaningful(inner[field])) lines.set(`config.${field}`, JSON.stringify(stable(inner[field])));
  }
  const history = (config.history ?? []) as Array<{ empty_layer?: boolean }>;
  // One letter per history entry: L adds a layer, E (empty_layer) changes only the config.
  lines.set('history', JSON.stringify(history.map((h) => (h.empty_layer === true ? 'E' : 'L')).join('')));
  const rootfs = (config.rootfs ?? {}) as { diff_ids?: unknown[] };
  lines.set('layers', String(rootfs.diff_ids?.length ?? 0));
  return lines;
}

/** One line per path of an unpacked root filesystem, keyed by `/path`. */
export async function treeLines(rootfs: string): Promise<Snapshot> {
  const state = await treeState(rootfs);
  const hardlinkOf = new Map<string, string>();
  for (const group of state.hardlinks) for (const path of group.slice(1)) hardlinkOf.set(path, group[0]!);
  const lines: Snapshot = new Map();
  for (const [path, entry] of Object.entries(state.paths)) {
    const fields = [entry.type, entry.mode.toString(8).padStart(4, '0'), `${entry.uid}:${entry.gid}`];
    if (entry.size !== undefined) fields.push(`size=${entry.size}`, `sha256=${entry.sha256!.slice(0, 16)}`);
    if (entry.linkTarget !== undefined) fields.push(`-> ${JSON.stringify(entry.linkTarget)}`);
    if (entry.rdev !== undefined) fields.push(`rdev=${entry.rdev}`);
    const hardlink = hardlinkOf.get(path);
    if (hardlink !== undefined) fields.push(`hardlink=/${hardlink}`);
    const xattrs = Object.entries(entry.xattrs).sort(([a], [b]) => a.localeCompare(b));
    if (xattrs.length > 0) fields.push(`xattrs=${xattrs.map(([k, v]) => `${k}:${v}`).join(',')}`);
    lines.set(`/${path}`, fields.join(' '));
  }
  return lines;
}

/** The base image's tree and layers: trees of images built on it list only what differs from it. */
export interface BaseSnapshot {
  readonly tree: Snapshot;
  readonly diffIds: readonly string[];
}

/** The tree lines that differ from the base's, plus `removed` for base paths that are gone. */
export function relativeToBase(tree: Snapshot, base: Snapshot): Snapshot {
  const lines: Snapshot = new Map();
  for (const [path, line] of tree) if (base.get(path) !== line) lines.set(path, line);
  for (const path of base.keys()) if (!tree.has(path)) lines.set(path, 'removed');
  return lines;
}

/**
 * Unpacks `refName` of an OCI layout with `umoci raw unpack` into `rootfs` (which proves umoci can
 * read the layout), and returns the image's snapshot: config lines, then tree lines relative to `base`.
 * `config` replaces the layout's config where the layout is a conversion that may have lost fields.
 */
export async function snapshotLayout(layoutDir: string, refName: string, rootfs: string, base: BaseSnapshot, config?: Record<string, unknown>): Promise<Snapshot> {
  const image = config !== undefined ? { config } : await readImage(layoutDir, refName);
  try {
    await run('umoci', ['raw', 'unpack', '--image', `${layoutDir}:${refName}`, rootfs]);
  } catch (error) {
    throw new UnpackError(`umoci cannot unpack ${layoutDir}:${refName}: ${((error as { stderr?: string }).stderr ?? String(error)).trim()}`);
  }
  try {
    const diffIds = diffIdsOf(image.config);
    const onBase = base.diffIds.every((diffId, index) => diffIds[index] === diffId);
    const tree = onBase ? relativeToBase(await treeLines(rootfs), base.tree) : await treeLines(rootfs);
    return new Map([...configLines(image.config), ...[...tree].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}

function diffIdsOf(config: Record<string, unknown>): string[] {
  return ((config.rootfs ?? {}) as { diff_ids?: string[] }).diff_ids ?? [];
}

/** The tree and layers of the base image alone, to subtract from every case that builds on it. */
export async function baseSnapshot(layoutDir: string, refName: string, rootfs: string): Promise<BaseSnapshot> {
  const image = await readImage(layoutDir, refName);
  await run('umoci', ['raw', 'unpack', '--image', `${layoutDir}:${refName}`, rootfs]);
  try {
    return { tree: await treeLines(rootfs), diffIds: diffIdsOf(image.config) };
  } finally {
    await rm(rootfs, { recursive: true, force: true });
  }
}
