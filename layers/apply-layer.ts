/**
 * Applies one uncompressed layer tar to a root filesystem directory with OCI image-spec layer
 * semantics (whiteouts, opaque directories, type replacement), without ever creating, changing or
 * deleting anything outside that directory.
 *
 * Path safety, as containerd and umoci do it:
 * - Entry names are cleaned into root-relative paths: a leading `/` means the root and `..` never
 *   climbs above it, so `../x` and `/x` both land at `<root>/x` instead of being rejected.
 * - The parent directory of every entry is resolved on disk component by component, following
 *   symlinks but clamping them to the root (an absolute target restarts at the root), so writing
 *   `evil/passwd` after `evil -> /etc` lands in `<root>/etc/passwd`.
 * - The last component is never followed: an existing symlink there is replaced, not written through.
 * - A hardlink whose target climbs above the root with `..` is refused with UNSAFE_LAYER; an
 *   absolute target is taken relative to the root, like entry names.
 * - Entries that resolve to the root itself are skipped when they are directories (the root's own
 *   metadata is left alone) and refused with UNSAFE_LAYER otherwise.
 * Extraction is meant to run alone on its directory: nothing else may change it meanwhile.
 *
 * Speed: a layer of many small files is bound by system calls, so entries are written with
 * synchronous ones (no thread-pool round trip each), and each parent directory is resolved once:
 * resolutions are kept until this layer removes something or makes a symlink or hardlink, the only
 * changes of its own that could make a kept resolution wrong.
 *
 * Extended attributes cannot be set from Node, so they are not written to disk: every PAX xattr
 * (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`) is returned, byte-exact, in `ApplyStats.xattrs`, and the
 * caller decides what to do with them (for example carry `security.capability` into a new layer).
 */
import { realpath } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { extract as tarExtract } from 'tar-stream';
import { PaxXattrScanner } from './apply-pax-xattrs.js';
import { TsbuildError } from './errors.js';
import { isRoot, LayerApplier, type ApplyStats, type TarEntry } from './layer-applier.js';
import { drainedOrClosed } from './stream-util.js';

export type { ApplyStats };

export interface ApplyOptions {
  /** Give entries the uid and gid recorded in the tar. Default: true when running as root. */
  sameOwner?: boolean;
  /**
   * The files already under the root share their inodes with another tree (a linked copy). A
   * hardlink entry to such a file first gives it an inode of its own, so nothing done to the
   * link (its xattrs, say) reaches the other tree. Every other entry makes new inodes anyway.
   */
  sharedInodes?: boolean;
  /**
   * Skip an entry for the root itself (an empty name, `.`) that is not a directory, as Docker
   * does when ADD extracts an archive, instead of refusing the layer.
   */
  skipRootNonDirectories?: boolean;
  /**
   * Files that may be hard-linked into place instead of written, by root-relative entry path:
   * each is linked when, at that moment, its size, owner, mode and mtime (to the second) are the
   * entry's, it has no xattrs and no other link, and written from the tar otherwise. Only for a
   * tree nothing writes to afterwards (a read-only overlay layer): a write would reach the source.
   */
  linkSources?: ReadonlyMap<string, string>;
}

/**
 * Applies the uncompressed layer tar `tar` to `rootDir` (an existing directory); see the module
 * comment for the path rules. Resolves with what was applied once the whole tar has been read.
 * Throws TsbuildError UNSAFE_LAYER for entries that try to reach outside the root and
 * INVALID_LAYER for unreadable or inconsistent tars; `tar` is destroyed on failure.
 */
export async function applyLayer(rootDir: string, tar: Readable, options: ApplyOptions = {}): Promise<ApplyStats> {
  const root = await realpath(rootDir);
  const scanner = new PaxXattrScanner();
  const extract = tarExtract();
  let sourceError: unknown;
  // Every chunk goes through the scanner before the reader, so its findings are ready by the time
  // the reader emits the entry they belong to.
  void (async () => {
    try {
      for await (const chunk of tar) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        scanner.scan(bytes);
        if (!extract.write(bytes)) await drainedOrClosed(extract);
      }
      extract.end(null);
    } catch (err) {
      sourceError = err;
      extract.destroy(err as Error);
    }
  })();
  // Once the source has failed, its error is the cause of whatever the reader reports; otherwise
  // the reader's own errors are about the tar format.
  const readFailure = (err: unknown): unknown => {
    if (sourceError !== undefined) return sourceError;
    return err instanceof TsbuildError ? err : unreadable(err);
  };
  const applier = new LayerApplier(root, {
    sameOwner: options.sameOwner ?? isRoot(),
    sharedInodes: options.sharedInodes ?? false,
    skipRootNonDirectories: options.skipRootNonDirectories ?? false,
    linkSources: options.linkSources ?? new Map(),
    readFailure,
  });
  const entries = extract[Symbol.asyncIterator]();
  try {
    for (let index = 0; ; index++) {
      let next: IteratorResult<TarEntry>;
      try {
        next = await entries.next();
      } catch (err) {
        throw readFailure(err);
      }
      if (next.done) break;
      await applier.apply(next.value, scanner.take(index));
    }
    applier.finish();
  } catch (err) {
    tar.destroy();
    await entries.return?.().catch(() => undefined);
    throw err;
  }
  return applier.stats;
}

function unreadable(err: unknown): TsbuildError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TsbuildError('INVALID_LAYER', `cannot read layer tar: ${reason}`, { cause: err });
}
