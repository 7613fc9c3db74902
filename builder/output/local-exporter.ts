import { lstatSync } from 'node:fs';
import { chmod, lchown, lstat, mkdir, mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { isErrnoCode } from '../../layers/fs-util.js';
import { copyTree } from '../rootfs/copy-tree.js';
import { refusal, STDOUT_DEST, type Exporter } from './exporter.js';
import { unpackImages } from './final-rootfs.js';

/** `type=local`: the final stage's filesystem, unpacked into a directory. */
export interface LocalOutput {
  readonly type: 'local';
  readonly dest: string;
}

export const localExporter: Exporter<LocalOutput> = {
  type: 'local',
  usage: 'type=local,dest=DIR',
  parse(fields) {
    const dest = fields.required('dest', 'the directory to write the filesystem into');
    if (dest === STDOUT_DEST) throw fields.bad('type=local writes a directory; use type=tar,dest=- for stdout');
    return { type: 'local', dest };
  },
  check(spec) {
    const dest = path.resolve(spec.dest);
    const found = lstatOrUndefined(dest);
    if (found !== undefined && !found.isDirectory()) throw refusal(`type=local: ${dest} exists and is not a directory; give a directory as dest`);
  },
  writes(spec) {
    return { path: path.resolve(spec.dest), kind: 'directory' };
  },
  async export(artifact, spec, context) {
    const dest = path.resolve(spec.dest);
    await mkdir(path.dirname(dest), { recursive: true });
    // Built complete beside dest (same file system), then moved in: dest never holds half a tree.
    const staging = await mkdtemp(path.join(path.dirname(dest), `.${path.basename(dest)}.tsbuild-`));
    try {
      // What dest gets when it holds one directory per platform; one image's tree brings its own root's mode.
      await chmod(staging, 0o755);
      for (const image of await unpackImages(artifact, context.rootfsCache)) {
        const dir = path.join(staging, image.prefix);
        await mkdir(dir, { recursive: true });
        if (image.dir !== undefined) await copyTree(image.dir, dir);
      }
      await placeTree(staging, dest);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    return `local ${dest}`;
  },
};

/**
 * Moves the tree `from` to `dest`. An existing dest keeps what the tree does not replace, as
 * buildx's local output does; nothing is ever written through a symlink found in dest: where the
 * tree has a directory and dest a symlink (or any non-directory), the symlink is replaced.
 */
async function placeTree(from: string, dest: string): Promise<void> {
  if (lstatOrUndefined(dest) === undefined || (await rmdirIfEmpty(dest))) {
    await rename(from, dest);
    return;
  }
  await mergeInto(from, dest);
}

async function mergeInto(from: string, into: string): Promise<void> {
  for (const name of await readdir(from)) {
    const src = path.join(from, name);
    const dst = path.join(into, name);
    const existing = lstatOrUndefined(dst);
    const source = await lstat(src);
    if (existing?.isDirectory() && source.isDirectory()) {
      // A real directory (lstat): its owner and mode become the image's, and the merge goes on inside it.
      await lchown(dst, source.uid, source.gid).catch(() => undefined);
      await chmod(dst, source.mode & 0o7777);
      await mergeInto(src, dst);
      continue;
    }
    if (existing !== undefined) await rm(dst, { recursive: true, force: true });
    await rename(src, dst);
  }
}

async function rmdirIfEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    if (isErrnoCode(err, 'ENOTEMPTY') || isErrnoCode(err, 'EEXIST')) return false;
    throw err;
  }
}

function lstatOrUndefined(p: string): ReturnType<typeof lstatSync> | undefined {
  return lstatSync(p, { throwIfNoEntry: false });
}
