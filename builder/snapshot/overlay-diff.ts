import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import type { XattrMap } from '../../layers/xattrs.js';
import { isTopmostDeletion } from './diff.js';
import { nodeChanged, sameInode } from './scan.js';
import { changesToEntries, hasAncestorIn, withAncestors, XattrCache, type ChangeSet } from './entries.js';
import type { NodeStat, TreeSnapshot } from './scan.js';

/**
 * overlayfs keeps its own bookkeeping in xattrs of the upper directory: `trusted.overlay.*`, or
 * `user.overlay.*` when mounted with `userxattr` inside a user namespace.
 */
const OVERLAY_XATTR_PREFIXES = ['trusted.overlay.', 'user.overlay.'];
const OPAQUE_XATTRS = OVERLAY_XATTR_PREFIXES.map((prefix) => `${prefix}opaque`);
/** Upper entries that only make sense together with a lower layer; mounts must not enable them. */
const LOWER_DEPENDENT_XATTRS = OVERLAY_XATTR_PREFIXES.flatMap((prefix) => [`${prefix}redirect`, `${prefix}metacopy`]);

/**
 * The layer entries of one step run on an overlayfs mount, from scans of its upper directory
 * `upperDir` taken before and after the step. Only the upper directory is read: overlay whiteouts
 * (character devices 0/0) become `whiteout` entries, a directory newly marked opaque becomes an
 * `opaque` entry with its contents, a path that vanished from the upper directory (added by an
 * earlier step, deleted by this one) becomes a whiteout, and everything else is handled like
 * `diffTrees`. The mount must not use `redirect_dir` or `metacopy`, whose upper entries are not
 * self-contained; such entries are refused with OVERLAY_UNSUPPORTED.
 */
export async function diffOverlayUpper(before: TreeSnapshot, after: TreeSnapshot, upperDir: string): Promise<LayerEntry[]> {
  const changes: ChangeSet = { present: new Set(), whiteouts: new Set(), opaque: new Set() };
  const newDirectories: string[] = [];
  for (const [path, now] of after) {
    const was = before.get(path);
    if (isWhiteout(now)) {
      // All whiteouts share one inode, so their stat changes whenever another is made: compare by kind only.
      if (was === undefined || !isWhiteout(was)) changes.whiteouts.add(path);
      continue;
    }
    if (was !== undefined && !isWhiteout(was) && !nodeChanged(was, now)) continue;
    changes.present.add(path);
    if (now.type === 'directory' && (was === undefined || was.type !== 'directory' || !sameInode(was, now))) newDirectories.push(path);
  }

  // The attributes of everything the layer will hold; opaque directories are found among them.
  const xattrs = new XattrCache(upperDir);
  await xattrs.read(withAncestors(changes, after));
  for (const path of newDirectories) {
    if (OPAQUE_XATTRS.some((name) => xattrs.get(path)?.[name]?.toString() === 'y')) changes.opaque.add(path);
  }
  if (changes.opaque.size > 0) {
    for (const [path, now] of after) {
      if (!isWhiteout(now) && hasAncestorIn(path, changes.opaque)) changes.present.add(path);
    }
    for (const path of changes.whiteouts) {
      if (hasAncestorIn(path, changes.opaque)) changes.whiteouts.delete(path);
    }
  }

  // Paths an earlier step added and this one deleted leave no whiteout in the upper directory.
  const visible = visibleTree(after);
  for (const path of before.keys()) {
    if (!after.has(path) && isTopmostDeletion(path, visible, changes.opaque)) changes.whiteouts.add(path);
  }

  return changesToEntries(changes, after, upperDir, { xattrs, dropXattr: isOverlayXattr, checkXattrs: refuseLowerDependent });
}

function isWhiteout(node: NodeStat): boolean {
  return node.type === 'char' && node.rdev === 0n;
}

/** The upper tree without its whiteouts, as the merged view shows it. */
function visibleTree(upper: TreeSnapshot): TreeSnapshot {
  const visible: TreeSnapshot = new Map();
  for (const [path, node] of upper) if (!isWhiteout(node)) visible.set(path, node);
  return visible;
}

function isOverlayXattr(name: string): boolean {
  return OVERLAY_XATTR_PREFIXES.some((prefix) => name.startsWith(prefix));
}

function refuseLowerDependent(path: string, xattrs: XattrMap): void {
  const found = LOWER_DEPENDENT_XATTRS.find((name) => name in xattrs);
  if (found !== undefined) {
    throw new TsbuildError('OVERLAY_UNSUPPORTED', `overlay upper entry ${JSON.stringify(path)} has ${found}; mount the overlay with redirect_dir=off and metacopy=off`);
  }
}
