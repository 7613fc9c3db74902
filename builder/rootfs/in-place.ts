import { createReadStream, existsSync } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream } from '../../layers/compression.js';
import { TsbuildError } from '../../layers/errors.js';
import { isErrnoCode, lstatOrUndefined } from '../../layers/fs-util.js';
import type { ImageLayer } from '../model/image-layer.js';
import { applyLayers } from './apply-layers.js';
import { mountPoints } from '../host/mountinfo.js';
import type { PreparedRootfs } from './prepare.js';
import { classifyPath, protectPaths, type ProtectedPaths } from './protected-paths.js';
import { nodeBinary } from '../host/this-node.js';


/**
 * This container's `/`, handed from stage to stage like kaniko does. A claim removes everything
 * under `/` but the protected paths (see `inPlaceProtectedPaths`) and puts the claiming stage's
 * layers in its place; the stage that held `/` before loses it, and its rootfs says so through
 * `holdsStage`. Nothing is released: the container is thrown away after the build.
 */
export class InPlaceRoot {
  private holder: { lost: boolean } | undefined;
  private paths: Promise<ProtectedPaths> | undefined;
  private owned: Promise<ProtectedPaths> | undefined;

  /** `protectedPaths`: absolute paths the build must keep besides the built-in ones (workspace, context, cache, outputs). */
  constructor(private readonly protectedPaths: readonly string[]) {}

  /** True until the first claim. */
  get unclaimed(): boolean {
    return this.holder === undefined;
  }

  async claim(layers: readonly ImageLayer[]): Promise<PreparedRootfs> {
    if (this.holder) this.holder.lost = true;
    const holder = { lost: false };
    this.holder = holder;
    this.paths ??= inPlaceProtectedPaths(this.protectedPaths).then(protectPaths);
    this.owned ??= builderOwnPaths(this.protectedPaths).then(protectPaths);
    const [paths, owned] = await Promise.all([this.paths, this.owned]);
    await replaceRootContents('/', paths, layers, owned);
    return {
      dir: '/',
      release: async () => undefined,
      holdsStage: () => !holder.lost,
      snapshotExclude: (rel) => classifyPath(paths, rel) === 'protected',
      applyLayers: (more) => applyOnto('/', paths, more, owned),
    };
  }
}

/**
 * Every path an in-place build keeps: `extra` plus this node binary, the tsbuild installation (with
 * the node_modules it sits in), the script that was started, the working directory, `/proc`, `/sys`,
 * `/dev`, the container marker files and every mount point but `/`. Symlinks are resolved, so the
 * results are the real paths the removal meets.
 */
export async function inPlaceProtectedPaths(extra: readonly string[]): Promise<string[]> {
  const wanted = ['/proc', '/sys', '/dev', '/.dockerenv', '/run/.containerenv'];
  if (process.cwd() !== '/') wanted.push(process.cwd());
  wanted.push(...(await mountPoints()).filter((point) => point !== '/'));
  const resolved = await Promise.all(wanted.map((p) => realPathOfPossiblyMissing(path.resolve(p))));
  return [...(await builderOwnPaths(extra)), ...resolved];
}

/**
 * The protected paths that hold the builder's own files: `extra` plus this node binary, the
 * tsbuild installation and the script that was started, symlinks resolved. A base image with
 * anything there is refused (see `refuseOwnedConflicts`), where an image's entries at the other
 * protected paths (mount points, `/proc`) are left out quietly.
 */
export async function builderOwnPaths(extra: readonly string[]): Promise<string[]> {
  const wanted = [...extra, ...new Set([process.execPath, nodeBinary()]), installationRoot()];
  if (process.argv[1]) wanted.push(process.argv[1]);
  return Promise.all(wanted.map((p) => realPathOfPossiblyMissing(path.resolve(p))));
}

/** The directory holding this package's package.json, or the node_modules it was installed into. */
function installationRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) return path.dirname(fileURLToPath(import.meta.url));
    dir = parent;
  }
  // Installed as a dependency, its own dependencies may sit beside it.
  return path.basename(path.dirname(dir)) === 'node_modules' ? path.dirname(dir) : dir;
}

/** `realpath` of the longest existing prefix, with the missing rest appended as it is. */
async function realPathOfPossiblyMissing(abs: string): Promise<string> {
  const missing: string[] = [];
  for (let current = abs; ; current = path.dirname(current)) {
    try {
      return path.join(await realpath(current), ...missing.reverse());
    } catch (error) {
      if (!isErrnoCode(error, 'ENOENT') && !isErrnoCode(error, 'ENOTDIR')) throw error;
      if (current === '/') return abs;
      missing.push(path.basename(current));
    }
  }
}

/**
 * Makes `root` hold exactly `layers` outside the protected paths: unpacks them into a staging
 * directory inside `root` (same file system, so entries move by rename), removes everything
 * unprotected from `root`, then moves the staged tree in (see `mergeTree`). Layers are never
 * applied onto `root` directly: a symlink, whiteout or opaque directory in them could otherwise
 * reach into a protected path. With `owned`, layers with anything at the builder's own paths are
 * refused before anything of `root` is removed.
 */
export async function replaceRootContents(root: string, paths: ProtectedPaths, layers: readonly ImageLayer[], owned?: ProtectedPaths): Promise<void> {
  const staging = await mkdtemp(path.join(root, '.tsbuild-unpack-'));
  try {
    await applyLayers(staging, layers);
    if (owned) await refuseOwnedConflicts(staging, root, owned);
    const withStaging = protectPaths([...paths.roots, path.relative(root, staging)].map((rel) => `/${rel}`));
    await removeUnprotected(root, withStaging);
    await mergeTree(staging, root, paths);
  } finally {
    // What is left are the image's entries at protected paths (its /proc, /dev nodes, ...).
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Removes everything under `root` that is neither protected nor above a protected path; the
 * directories above protected paths stay, with their other contents removed. Never follows a
 * symlink, and never descends into a protected path.
 */
export async function removeUnprotected(root: string, paths: ProtectedPaths, rel = ''): Promise<void> {
  for (const name of await readdir(rel === '' ? root : path.join(root, rel))) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const abs = path.join(root, childRel);
    switch (classifyPath(paths, childRel)) {
      case 'protected':
        break;
      case 'ancestor':
        if (!(await lstat(abs)).isDirectory()) throw new TsbuildError('IN_PLACE', `/${childRel} lies above a protected path but is not a directory`);
        await removeUnprotected(root, paths, childRel);
        break;
      case 'free':
        await rm(abs, { recursive: true, force: true });
        break;
    }
  }
}

/**
 * Moves the tree `source` into `target` the way a layer would apply it, except that protected
 * paths are left alone: a protected entry of `source` is skipped, a directory above a protected
 * path is merged into (taking the source's owner, mode and times), and a non-directory there is an
 * error, since putting it in place would destroy what is protected. Other entries replace what is
 * at their place, or are merged into it when both are directories. Symlinks are never followed.
 */
export async function mergeTree(source: string, target: string, paths: ProtectedPaths, rel = ''): Promise<void> {
  for (const name of await readdir(rel === '' ? source : path.join(source, rel))) {
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const kind = classifyPath(paths, childRel);
    if (kind === 'protected') continue;
    const from = path.join(source, childRel);
    const to = path.join(target, childRel);
    const fromStats = await lstat(from);
    const toStats = await lstatOrUndefined(to);
    if (kind === 'ancestor' && toStats && !toStats.isDirectory()) {
      throw new TsbuildError('IN_PLACE', `/${childRel} lies above a protected path but is not a directory`);
    }
    if (fromStats.isDirectory() && (kind === 'ancestor' || toStats?.isDirectory())) {
      // A protected path that does not exist yet (an output) may lack its parents.
      if (!toStats) await mkdir(to);
      await mergeTree(source, target, paths, childRel);
      await lchown(to, fromStats.uid, fromStats.gid);
      await chmod(to, fromStats.mode & 0o7777);
      await lutimes(to, fromStats.atime, fromStats.mtime);
    } else if (kind === 'ancestor') {
      throw new TsbuildError('IN_PLACE_CONFLICT', `the image has a non-directory at /${childRel}, where protected paths of this build lie; cannot build in place`);
    } else {
      if (toStats) await rm(to, { recursive: true, force: true });
      await rename(from, to);
    }
  }
}

/**
 * Applies layers built outside the rootfs onto `root` through a staging directory, like
 * `replaceRootContents` but without removing anything first. Such layers (COPY steps') hold no
 * whiteouts or opaque markers; one that does is refused, since staging cannot carry them.
 */
async function applyOnto(root: string, paths: ProtectedPaths, layers: readonly ImageLayer[], owned: ProtectedPaths): Promise<void> {
  for (const layer of layers) {
    const staging = await mkdtemp(path.join(root, '.tsbuild-unpack-'));
    try {
      const stats = await applyLayer(staging, await decompressStream(createReadStream(await layer.blobPath())));
      if (stats.applied.whiteout + stats.applied.opaque > 0) {
        throw new TsbuildError('IN_PLACE', `layer ${layer.descriptor.digest} deletes files; in-place builds can only add its kind of layer`);
      }
      await refuseOwnedConflicts(staging, root, owned);
      await mergeTree(staging, root, paths);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/**
 * Throws IN_PLACE_CONFLICT when the tree at `staging` has anything at or under one of the builder's
 * own paths (`owned`), or a non-directory above one: putting it in place would either overwrite
 * the builder or be silently dropped. An empty directory where `root` has a directory is fine.
 * Walks each path from the top with lstat, so no symlink of the image is ever followed.
 */
export async function refuseOwnedConflicts(staging: string, root: string, owned: ProtectedPaths): Promise<void> {
  for (const ownedRel of owned.roots) {
    const parts = ownedRel.split('/');
    for (let depth = 1; depth <= parts.length; depth++) {
      const rel = parts.slice(0, depth).join('/');
      const found = await lstatOrUndefined(path.join(staging, rel));
      if (!found) break;
      const isOwnedRoot = depth === parts.length;
      if (found.isDirectory() && !isOwnedRoot) continue;
      if (found.isDirectory()) {
        const inside = await readdir(path.join(staging, rel));
        const here = await lstatOrUndefined(path.join(root, rel));
        if (inside.length === 0 && (!here || here.isDirectory())) break;
        throw ownedConflict(inside.length > 0 ? `${rel}/${inside.sort()[0]}` : rel, ownedRel);
      }
      throw ownedConflict(rel, ownedRel);
    }
  }
}

function ownedConflict(rel: string, ownedRel: string): TsbuildError {
  return new TsbuildError(
    'IN_PLACE_CONFLICT',
    `cannot build in place: the image has /${rel}, where this build keeps its own files (/${ownedRel}); keep tsbuild, its cache and the build's inputs and outputs elsewhere, as the builder image of examples/kubernetes keeps everything under /tsbuild`,
  );
}

/** Where `inContainer` looks; `root` prefixes every file it reads (for tests). */
export interface ContainerProbe {
  readonly root?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** cgroup paths container managers create, as `/proc/1/cgroup` shows them under cgroup v1. */
const containerCgroup = /\/(docker|kubepods|containerd|libpod|lxc|buildkit|actions_job)[/.-]|\/docker-[0-9a-f]+\.scope/;

/**
 * Whether this process seems to run in a container: Docker's `/.dockerenv`, Podman's
 * `/run/.containerenv`, the `container` variable systemd-nspawn, Podman and LXC set, Kubernetes'
 * `KUBERNETES_SERVICE_HOST`, or a container manager's cgroup for pid 1.
 */
export async function inContainer(probe: ContainerProbe = {}): Promise<boolean> {
  const root = probe.root ?? '/';
  const env = probe.env ?? process.env;
  if (env.container || env.KUBERNETES_SERVICE_HOST) return true;
  for (const marker of ['.dockerenv', 'run/.containerenv']) {
    if (await lstatOrUndefined(path.join(root, marker))) return true;
  }
  const cgroup = await readFile(path.join(root, 'proc/1/cgroup'), 'utf8').catch(() => '');
  return containerCgroup.test(cgroup);
}
