/**
 * Extended attributes of paths, through the system calls themselves (`layers/native/xattr.ts`):
 * symlinks are never followed, values are exact bytes (binary ones such as `security.capability`
 * included), and every namespace the process may read is covered (`user.*`, `security.*`,
 * `system.*`, and as root `trusted.*`).
 */
import { TsbuildError } from './errors.js';
import { getXattr, listXattrNames, setXattr } from './native/xattr.js';

/** Extended attributes of one path: name (e.g. `security.capability`) to raw value. */
export type XattrMap = Record<string, Buffer>;

/**
 * The extended attributes of `path` (a symlink itself, not its target); undefined when it has none
 * or no longer exists. A name removed while being read is left out. `label` names the path in errors.
 */
export function readXattrsOf(path: string, label = path): XattrMap | undefined {
  try {
    const names = listXattrNames(path);
    if (names === undefined || names.length === 0) return undefined;
    const xattrs: XattrMap = {};
    for (const name of names) {
      const value = getXattr(path, name);
      if (value !== undefined) xattrs[name] = value;
    }
    return Object.keys(xattrs).length > 0 ? xattrs : undefined;
  } catch (error) {
    throw new TsbuildError('XATTR_READ', `cannot read the extended attributes of ${label}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/**
 * The extended attributes of each of `paths` (symlinks themselves, not their targets). Paths without
 * attributes, and paths that no longer exist, are absent from the result.
 */
export async function readXattrs(paths: readonly string[]): Promise<Map<string, XattrMap>> {
  const result = new Map<string, XattrMap>();
  for (const path of paths) {
    const xattrs = readXattrsOf(path);
    if (xattrs !== undefined) result.set(path, xattrs);
  }
  return result;
}

/** Sets `xattrs` on `path` (a symlink itself, not its target); attributes not named are left alone. */
export async function writeXattrs(path: string, xattrs: XattrMap): Promise<void> {
  for (const [name, value] of Object.entries(xattrs)) {
    try {
      setXattr(path, name, value);
    } catch (error) {
      throw new TsbuildError('XATTR_WRITE', `cannot set extended attribute ${name} of ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  }
}

/** Sets the attributes of many paths; attributes not named are left alone. */
export async function writeXattrsOfPaths(byPath: ReadonlyMap<string, XattrMap>): Promise<void> {
  for (const [path, xattrs] of byPath) await writeXattrs(path, xattrs);
}
