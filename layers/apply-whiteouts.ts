import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Removes what lower layers left at `target`, which must be a path inside the root whose last
 * component is not to be followed. `written` holds the absolute paths the current layer wrote and
 * all their ancestors: those stay (directories among them are searched for lower content instead),
 * so a whiteout or opaque marker never hides entries of its own layer, whatever their order.
 * Symlinks are removed, never followed.
 */
export async function removeLowerContent(target: string, written: ReadonlySet<string>): Promise<void> {
  if (!written.has(target)) {
    const exists = await lstat(target).then(
      () => true,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
        throw err;
      },
    );
    if (exists) await rm(target, { recursive: true, force: true });
    return;
  }
  await removeLowerChildren(target, written);
}

/** Applies `removeLowerContent` to every child of the directory `dir`; does nothing if `dir` is not one. */
export async function removeLowerChildren(dir: string, written: ReadonlySet<string>): Promise<void> {
  let names: string[];
  try {
    if (!(await lstat(dir)).isDirectory()) return;
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  for (const name of names) await removeLowerContent(path.join(dir, name), written);
}
