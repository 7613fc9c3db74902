import { readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';

const maxSymlinks = 40;

const components = (path: string): string[] => path.split('/').filter((part) => part !== '' && part !== '.');

/**
 * The host path of `containerPath` inside `rootfs`, following symbolic links as the contained
 * process would see them: absolute targets and `..` never leave `rootfs`. Mounting on the result
 * therefore always lands inside the root filesystem, whatever links the image holds.
 */
export async function resolveInRoot(rootfs: string, containerPath: string): Promise<string> {
  const pending = components(containerPath);
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = join(rootfs, ...resolved, part);
    const stats = await lstatOrUndefined(candidate);
    if (stats?.isSymbolicLink()) {
      if (++links > maxSymlinks) {
        throw new TsbuildError('SYMLINK_LOOP', `too many symbolic links resolving ${containerPath} in the root filesystem`);
      }
      const target = await readlink(candidate);
      if (target.startsWith('/')) resolved = [];
      pending.unshift(...components(target));
      continue;
    }
    resolved.push(part);
  }
  return join(rootfs, ...resolved);
}
