/**
 * A content-addressed cache of unpacked layer stacks, shared by all builds of a machine (or user).
 *
 * `<dir>/sha256/<hex>` is the filesystem of the stack whose ChainID is `sha256:<hex>`. Such a
 * directory appears by one atomic rename once it is complete and is never modified afterwards:
 * builds use it read-only, as an overlay lower directory or as the source of a copy.
 * `<dir>/.lock-<hex>` serializes the unpacking of one stack across processes, and
 * `<dir>/.tmp-<hex>-<owner>` are stacks being unpacked, named by the process unpacking them (see
 * local-store-owners.ts) so that those a killed build left are found and removed.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { promisify } from 'node:util';
import { applyLayer } from '../../layers/apply-layer.js';
import { decompressStream } from '../../layers/compression.js';
import { DigestStream } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';
import { withLockFile } from '../../layers/layout-lock.js';
import type { Digest } from '../../layers/types.js';
import { writeXattrsOfPaths, type XattrMap } from '../../layers/xattrs.js';
import type { ImageLayer } from '../model/image-layer.js';
import { chainIds } from '../../layers/chain-id.js';
import { isOwnedName, ownedName, ownerIsGone } from '../cache/local-store-owners.js';
import { linkedCopyTree } from './copy-tree.js';
import { namingLayer } from './apply-layers.js';

const execFileAsync = promisify(execFile);

/** Unpacking a large stack can take a while; others wanting the same stack wait this long. */
const LOCK_TIMEOUT_MS = 30 * 60_000;
/** Overlayfs keeps its own bookkeeping in these; taken from a layer they would change what a mount shows. */
const OVERLAY_XATTR_PREFIXES = ['trusted.overlay.', 'user.overlay.'];

export class RootfsCache {
  /** Layers this instance has applied, i.e. the work its cache misses cost. */
  unpackedLayers = 0;
  /** Stacks being unpacked by this process, so that concurrent callers share the work. */
  private readonly pending = new Map<string, Promise<string>>();

  /** `dir` is usually the `rootfs` folder of defaultCacheDir(). */
  constructor(readonly dir: string) {}

  /** Where the stack with this ChainID lives (whether or not it is there yet). */
  chainDir(chainId: Digest): string {
    return path.join(this.dir, 'sha256', hexOf(chainId));
  }

  /**
   * The directory holding `layers` (at least one) applied in order, unpacked on the first request
   * by any process and found on later ones. The longest already cached prefix of the stack is
   * copied rather than unpacked again. Callers must never modify the returned directory.
   * Throws DIGEST_MISMATCH when a layer's content does not match its diff_id, and whatever
   * `applyLayer` throws for an unsafe or broken layer; nothing is cached then.
   */
  async unpackedChain(layers: readonly ImageLayer[], onNote?: (message: string) => void): Promise<string> {
    if (layers.length === 0) throw new Error('unpackedChain needs at least one layer');
    const ids = chainIds(layers.map((layer) => layer.diffId));
    const target = this.chainDir(ids[ids.length - 1]);
    if (await isDirectory(target)) return target;
    let pending = this.pending.get(target);
    if (pending === undefined) {
      pending = this.unpackLocked(layers, ids, target, onNote).finally(() => this.pending.delete(target));
      this.pending.set(target, pending);
    }
    return pending;
  }

  private async unpackLocked(layers: readonly ImageLayer[], ids: Digest[], target: string, onNote?: (message: string) => void): Promise<string> {
    const hex = path.basename(target);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    await withLockFile(
      path.join(this.dir, `.lock-${hex}`),
      async () => {
        // Another process may have finished it while we waited.
        if (await isDirectory(target)) return;
        // Holding the lock, any temp dir of this stack belongs to a build that died; so does any other whose owner is gone.
        await removeTempDirs(this.dir, hex);
        const temp = path.join(this.dir, `.tmp-${hex}-${ownedName()}`);
        await mkdir(temp, { mode: 0o755 });
        try {
          await this.fill(temp, layers, ids, onNote);
          // Everything is on disk before the name appears, so a crash never leaves a partial stack.
          await execFileAsync('sync', ['--file-system', temp]);
          await rename(temp, target);
        } finally {
          await rm(temp, { recursive: true, force: true });
        }
      },
      { timeoutMs: LOCK_TIMEOUT_MS },
    );
    return target;
  }

  /**
   * Makes `dir` hold the whole stack: its longest cached prefix plus the layers after it. The
   * prefix is a linked copy, which costs a directory walk rather than a copy of its data; neither
   * stack is ever changed in place, and the layers applied on top make new inodes.
   */
  private async fill(dir: string, layers: readonly ImageLayer[], ids: Digest[], onNote?: (message: string) => void): Promise<void> {
    let start = 0;
    for (let i = ids.length - 2; i >= 0; i--) {
      const prefix = this.chainDir(ids[i]);
      if (await isDirectory(prefix)) {
        await linkedCopyTree(prefix, dir);
        start = i + 1;
        break;
      }
    }
    for (const layer of layers.slice(start)) {
      const skipped = await applyVerified(dir, layer, start > 0);
      if (skipped.length > 0) onNote?.(skippedDevicesNote(layer, skipped));
      this.unpackedLayers += 1;
    }
  }
}

/** Applies one layer blob to `root`, checking the uncompressed content against the layer's diff_id, and sets its xattrs. */
async function applyVerified(root: string, layer: ImageLayer, sharedInodes: boolean): Promise<string[]> {
  const tar = await decompressStream(createReadStream(await layer.blobPath()));
  const hashed = pipeline(tar, new DigestStream(), () => undefined) as DigestStream;
  const stats = await namingLayer(layer, () => applyLayer(root, hashed, { sharedInodes }));
  if (hashed.digest !== layer.diffId) {
    throw new TsbuildError('DIGEST_MISMATCH', `layer ${layer.descriptor.digest} unpacks to ${hashed.digest}, not its diff_id ${layer.diffId}`);
  }
  const byPath = new Map<string, XattrMap>();
  for (const [rel, xattrs] of stats.xattrs) {
    const settable = Object.fromEntries(Object.entries(xattrs).filter(([name]) => canSet(name)));
    if (Object.keys(settable).length > 0) byPath.set(path.join(root, rel), settable);
  }
  await writeXattrsOfPaths(byPath);
  return stats.skippedDevices;
}

/** Says which device nodes of a layer were left out, since this process may not create them. */
function skippedDevicesNote(layer: ImageLayer, skipped: readonly string[]): string {
  const shown = skipped.slice(0, 3).map((rel) => `/${rel}`).join(', ');
  const more = skipped.length > 3 ? ` and ${skipped.length - 3} more` : '';
  return `layer ${layer.descriptor.digest}: skipped ${skipped.length} device node${skipped.length === 1 ? '' : 's'} (${shown}${more}): this user namespace may not create them`;
}

/**
 * Whether an xattr from a layer is set on disk. Overlayfs's own are never (they would be obeyed by
 * an overlay mount on top); without root, only `user.*` ones can be, and the others are dropped.
 */
function canSet(name: string): boolean {
  if (OVERLAY_XATTR_PREFIXES.some((prefix) => name.startsWith(prefix))) return false;
  return process.getuid?.() === 0 || name.startsWith('user.');
}

/** Removes the temp dirs of the stack `hex`, and those of other stacks whose owner is gone. */
async function removeTempDirs(dir: string, hex: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const temp = /^\.tmp-([0-9a-f]{64})-(.+)$/.exec(name);
    if (temp === null) continue;
    const [, stack, owner = ''] = temp;
    const dead = stack === hex || (isOwnedName(owner) && (await ownerIsGone(path.join(dir, name), owner)));
    if (dead) await rm(path.join(dir, name), { recursive: true, force: true });
  }
}

function hexOf(chainId: Digest): string {
  const match = /^sha256:([0-9a-f]{64})$/.exec(chainId);
  if (match === null) throw new TsbuildError('DIGEST', `unsupported or malformed ChainID ${JSON.stringify(chainId)}`);
  return match[1];
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await lstatOrUndefined(dir))?.isDirectory() ?? false;
}
