import { lstat } from 'node:fs/promises';
import path from 'node:path';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { resolveInRoot, splitPath } from '../fs/resolve-path.js';
import type { WorkdirStep } from '../model/plan.js';
import type { StageRun } from './stage-run.js';
import { resolveOwner } from './user-db.js';

/**
 * The directories a WORKDIR must create, owned by the stage's USER as BuildKit does; none when
 * the directory exists already.
 */
export async function workdirEntries(step: WorkdirStep, run: StageRun, now: number): Promise<LayerEntry[]> {
  const rootfs = await run.rootfs();
  const real = await resolveInRoot(rootfs, step.path, 'rootfs', true);
  const owner = step.user !== undefined ? resolveOwner(step.user, run.layers.length > 0 ? rootfs : undefined) : { uid: 0, gid: 0 };
  const parts = splitPath(real);
  const found: (LayerEntry | undefined)[] = [];
  for (let i = 1; i <= parts.length; i++) {
    const rel = parts.slice(0, i).join('/');
    const stats = await lstat(path.join(rootfs, rel)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (stats && !stats.isDirectory()) throw new TsbuildError('WORKDIR', `cannot create WORKDIR ${step.path}: /${rel} is not a directory`);
    found.push(stats && { path: rel, type: 'directory', mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtime: Math.floor(stats.mtimeMs / 1000) });
  }
  if (found.every((entry) => entry !== undefined)) return [];
  const entries = found.map((entry, i): LayerEntry => entry ?? { path: parts.slice(0, i + 1).join('/'), type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: now });
  return entries;
}
