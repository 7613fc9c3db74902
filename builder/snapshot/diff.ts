import type { LayerEntry } from '../../layers/entry.js';
import { changesToEntries, hasAncestorIn, parentOf, type ChangeSet } from './entries.js';
import { nodeChanged, sameInode, type TreeSnapshot } from './scan.js';

/**
 * The layer entries that turn the tree `before` into the tree `after`, both scanned from `root`
 * (which now holds `after`), with OCI layer semantics: added and changed paths, whiteouts for
 * deleted ones, and an opaque marker plus the whole new subtree for a replaced directory.
 */
export async function diffTrees(before: TreeSnapshot, after: TreeSnapshot, root: string): Promise<LayerEntry[]> {
  return changesToEntries(compareTrees(before, after), after, root);
}

/** The change set between two snapshots of the same tree. */
export function compareTrees(before: TreeSnapshot, after: TreeSnapshot): ChangeSet {
  const changes: ChangeSet = { present: new Set(), whiteouts: new Set(), opaque: new Set() };
  for (const [path, now] of after) {
    const was = before.get(path);
    if (was === undefined) {
      changes.present.add(path);
    } else if (nodeChanged(was, now)) {
      changes.present.add(path);
      // A directory that is not the one that was there: whatever lower layers hold under it is gone.
      if (now.type === 'directory' && (was.type !== 'directory' || !sameInode(was, now))) changes.opaque.add(path);
    }
  }
  if (changes.opaque.size > 0) {
    for (const path of after.keys()) {
      if (hasAncestorIn(path, changes.opaque)) changes.present.add(path);
    }
  }
  for (const path of before.keys()) {
    if (!after.has(path) && isTopmostDeletion(path, after, changes.opaque)) changes.whiteouts.add(path);
  }
  return changes;
}

/**
 * A deleted path needs its own whiteout only when its parent is still a directory that is not
 * replaced wholesale: a deleted parent's whiteout, a parent replaced by a non-directory, or an
 * opaque ancestor already removes it.
 */
export function isTopmostDeletion(path: string, after: TreeSnapshot, opaque: ReadonlySet<string>): boolean {
  const parent = parentOf(path);
  if (parent === '') return true;
  return after.get(parent)?.type === 'directory' && !opaque.has(parent) && !hasAncestorIn(parent, opaque);
}
