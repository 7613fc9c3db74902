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
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { link, realpath, rm } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { giveOwnInode, makeDevice, makeFifo } from './apply-nodes.js';
import { PaxXattrScanner, type Xattrs } from './apply-pax-xattrs.js';
import { removeLowerChildren, removeLowerContent } from './apply-whiteouts.js';
import type { EntryType } from './entry.js';
import { TsbuildError } from './errors.js';
import { cleanRootRelative, climbsAboveRoot, secureJoinBelow } from './secure-join.js';
import { drainedOrClosed } from './stream-util.js';
import { isErrnoCode } from './fs-util.js';

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
}

export interface ApplyStats {
  /** Tar entries read, whiteout markers and skipped entries included. */
  entries: number;
  /** Entries applied, by kind. */
  applied: Record<EntryType, number>;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** Root-relative paths of device nodes not created because the process may not make them (not root, or in a user namespace). */
  skippedDevices: string[];
  /**
   * Root-relative paths left owned by the extracting user because their uid or gid does not exist
   * here (a user namespace that maps only one id).
   */
  unmappedOwners: string[];
  /**
   * PAX extended attributes, by the root-relative path where the entry carrying them was written.
   * They are NOT set on disk (Node cannot set xattrs), so they are lost unless the caller keeps
   * them from here.
   */
  xattrs: Map<string, Xattrs>;
}

/** One entry as the tar reader emits it: a stream of its contents with its header. */
type TarEntry = Extract extends AsyncIterable<infer E> ? E : never;
/** The tar reader's header, with the PAX records it attaches. */
type TarHeader = Omit<Header, 'pax'> & { pax?: Record<string, string> | null };

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** Other `.wh..wh.` names are AUFS bookkeeping, not content, and are skipped like containerd does. */
const AUFS_META_PREFIX = '.wh..wh.';

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
  const applier = new LayerApplier(root, options.sameOwner ?? isRoot(), options.sharedInodes ?? false, readFailure, options.skipRootNonDirectories ?? false);
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

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Linux's limits: NAME_MAX bytes for one path component, PATH_MAX (less its NUL) for a path. */
const NAME_MAX = 255;
const PATH_MAX = 4095;

/**
 * Refuses an entry name or link target the file system cannot take: with a NUL (possible in PAX
 * and GNU long names), a component longer than NAME_MAX or a whole longer than PATH_MAX.
 */
function checkEntryPath(value: string, what: 'name' | 'link target'): void {
  const shown = JSON.stringify(value.length > 100 ? `${value.slice(0, 60)}...` : value);
  const invalid = (reason: string): TsbuildError => new TsbuildError('INVALID_LAYER', `entry ${what} ${shown} ${reason}`);
  if (value.includes('\0')) throw invalid('contains NUL');
  if (Buffer.byteLength(value) > PATH_MAX) throw invalid(`is longer than ${PATH_MAX} bytes`);
  if (value.split('/').some((part) => Buffer.byteLength(part) > NAME_MAX)) throw invalid(`has a component longer than ${NAME_MAX} bytes`);
}

/** Metadata of one entry, read from its tar header (PAX values preferred). */
interface Meta {
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, fractional when PAX gives them. */
  mtime: number;
}

class LayerApplier {
  readonly stats: ApplyStats = {
    entries: 0,
    applied: { file: 0, directory: 0, symlink: 0, hardlink: 0, fifo: 0, char: 0, block: 0, whiteout: 0, opaque: 0 },
    bytes: 0,
    skippedDevices: [],
    unmappedOwners: [],
    xattrs: new Map(),
  };
  /** Absolute paths this layer wrote, with all their ancestors; whiteouts leave them alone. */
  private readonly written = new Set<string>();
  /** Directory modes and mtimes, set at the end so that writing their contents cannot disturb them. */
  private readonly directories = new Map<string, Meta>();
  /** Entry directories (cleaned, root-relative) to their resolved root-relative paths; see `forgetResolved`. */
  private readonly resolvedDirs = new Map<string, string>();
  /** Absolute paths known to be directories; see `forgetResolved`. */
  private readonly knownDirs = new Set<string>();
  private readonly canMknod = isRoot();

  constructor(
    private readonly root: string,
    private readonly sameOwner: boolean,
    private readonly sharedInodes: boolean,
    /** Turns an error met while reading an entry's contents into the one to throw. */
    private readonly readFailure: (err: unknown) => unknown,
    private readonly skipRootNonDirectories: boolean,
  ) {}

  async apply(entry: TarEntry, xattrs: Xattrs | undefined): Promise<void> {
    this.stats.entries += 1;
    const header = entry.header as TarHeader;
    checkEntryPath(header.name, 'name');
    if (header.linkname) checkEntryPath(header.linkname, 'link target');
    const rel = cleanRootRelative(header.name);
    const base = path.posix.basename(rel);
    const dirRel = path.posix.dirname(rel);

    if (isAufsMeta(rel, base)) {
      entry.resume();
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      entry.resume();
      await this.applyWhiteout(rel, dirRel, base);
      return;
    }
    if (rel === '') {
      entry.resume();
      if (header.type === 'directory' || this.skipRootNonDirectories) return;
      throw new TsbuildError('UNSAFE_LAYER', `entry ${header.name} of type ${header.type} would replace the root`);
    }

    const parent = this.resolveDir(dirRel);
    const target = path.join(parent, base);
    const kind = await this.applyEntry(entry, header, parent, target);
    if (kind === undefined) return;
    this.stats.applied[kind] += 1;
    this.markWritten(target);
    const key = path.relative(this.root, target);
    if (xattrs) this.stats.xattrs.set(key, xattrs);
    else this.stats.xattrs.delete(key);
  }

  /** Sets the modes and mtimes of this layer's directories; call once the tar is exhausted. */
  finish(): void {
    for (const [dir, meta] of this.directories) {
      let fd: number;
      try {
        fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
      } catch (err) {
        // Replaced or removed by a later entry of this layer.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') continue;
        throw err;
      }
      try {
        fchmodSync(fd, meta.mode);
        futimesSync(fd, meta.mtime, meta.mtime);
      } finally {
        closeSync(fd);
      }
    }
  }

  /** The absolute path `dirRel` (a cleaned entry directory, '.' for the root) resolves to inside the root. */
  private resolveDir(dirRel: string): string {
    return path.join(this.root, this.resolveDirRel(dirRel));
  }

  /** `resolveDir`, root-relative: each directory is resolved from its already resolved parent. */
  private resolveDirRel(dirRel: string): string {
    if (dirRel === '.' || dirRel === '') return '';
    let resolved = this.resolvedDirs.get(dirRel);
    if (resolved === undefined) {
      resolved = secureJoinBelow(this.root, this.resolveDirRel(path.posix.dirname(dirRel)), path.posix.basename(dirRel));
      this.resolvedDirs.set(dirRel, resolved);
    }
    return resolved;
  }

  /**
   * Drops every kept resolution and known directory; called before this layer removes anything or
   * makes a symlink or hardlink. Making files and directories where nothing was cannot change how
   * a path resolves, so those keep them.
   */
  private forgetResolved(): void {
    this.resolvedDirs.clear();
    this.knownDirs.clear();
  }

  /** Creates one non-whiteout entry at `target`; returns its kind, or undefined when it was skipped. */
  private async applyEntry(entry: TarEntry, header: TarHeader, parent: string, target: string): Promise<EntryType | undefined> {
    const meta = metaOf(header);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        await this.prepare(parent, target, false);
        await this.writeFile(entry, target, meta);
        return 'file';
      case 'directory':
        entry.resume();
        await this.prepare(parent, target, true);
        this.makeDirectory(target, meta);
        return 'directory';
      case 'symlink':
        entry.resume();
        if (!header.linkname) throw new TsbuildError('INVALID_LAYER', `symlink ${header.name} has no target`);
        await this.prepare(parent, target, false);
        this.forgetResolved();
        symlinkSync(header.linkname, target);
        this.own(() => lchownSync(target, meta.uid, meta.gid), target);
        lutimesSync(target, meta.mtime, meta.mtime);
        return 'symlink';
      case 'link':
        entry.resume();
        await this.makeHardlink(header, parent, target);
        return 'hardlink';
      case 'fifo':
        entry.resume();
        await this.prepare(parent, target, false);
        await makeFifo(target);
        this.setPathMeta(target, meta);
        return 'fifo';
      case 'character-device':
      case 'block-device': {
        entry.resume();
        if (!this.canMknod) {
          this.stats.skippedDevices.push(path.relative(this.root, target));
          return undefined;
        }
        const kind = header.type === 'character-device' ? 'char' : 'block';
        await this.prepare(parent, target, false);
        if (!(await makeDevice(target, kind, header.devmajor, header.devminor))) {
          this.stats.skippedDevices.push(path.relative(this.root, target));
          return undefined;
        }
        this.setPathMeta(target, meta);
        return kind;
      }
      default:
        entry.resume();
        throw new TsbuildError('INVALID_LAYER', `entry ${header.name} has unsupported tar type ${header.type ?? 'unknown'}`);
    }
  }

  private async applyWhiteout(rel: string, dirRel: string, base: string): Promise<void> {
    if (base === OPAQUE_MARKER) {
      const dir = this.resolveDir(dirRel);
      this.ensureDirectory(dir);
      this.forgetResolved();
      await removeLowerChildren(dir, this.written);
      this.markWritten(dir);
      this.stats.applied.opaque += 1;
      return;
    }
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '.' || name === '..') {
      throw new TsbuildError('UNSAFE_LAYER', `whiteout ${rel} names a parent directory`);
    }
    if (name === '') throw new TsbuildError('INVALID_LAYER', `whiteout ${rel} names nothing`);
    const dir = this.resolveDir(dirRel);
    this.forgetResolved();
    await removeLowerContent(path.join(dir, name), this.written);
    this.stats.applied.whiteout += 1;
  }

  /**
   * Makes `target` ready to be created: its parent directory exists, and whatever was at `target`
   * is removed, except a directory when a directory is wanted (its contents stay). Callers then
   * create the entry with calls that fail rather than follow a symlink at `target`.
   */
  private async prepare(parent: string, target: string, wantDirectory: boolean): Promise<void> {
    this.ensureDirectory(parent);
    const existing = lstatOrNull(target);
    if (existing === null || (wantDirectory && existing.isDirectory())) return;
    this.forgetResolved();
    await rm(target, { recursive: true, force: true });
  }

  /** Creates `dir` (resolved, inside the root) and its missing ancestors with mode 0755. */
  private ensureDirectory(dir: string): void {
    if (this.knownDirs.has(dir)) return;
    if (!lstatOrNull(dir)?.isDirectory()) {
      let current = this.root;
      for (const part of path.relative(this.root, dir).split('/')) {
        current = path.join(current, part);
        const found = lstatOrNull(current);
        if (found === null) {
          mkdirSync(current);
          chmodSync(current, 0o755);
        } else if (!found.isDirectory()) {
          const shown = path.relative(this.root, current);
          throw new TsbuildError('INVALID_LAYER', `cannot create ${path.relative(this.root, dir)}: ${shown} is not a directory`);
        }
      }
    }
    this.knownDirs.add(dir);
  }

  private async writeFile(entry: TarEntry, target: string, meta: Meta): Promise<void> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fd = openSync(target, flags, 0o600);
    try {
      for await (const chunk of this.contents(entry)) {
        for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset);
        this.stats.bytes += chunk.length;
      }
      // chown clears setuid and setgid, so the mode comes after it.
      this.own(() => fchownSync(fd, meta.uid, meta.gid), target);
      fchmodSync(fd, meta.mode);
      futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
  }

  private async *contents(entry: TarEntry): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of entry) yield chunk as Buffer;
    } catch (err) {
      throw this.readFailure(err);
    }
  }

  private makeDirectory(target: string, meta: Meta): void {
    if (lstatOrNull(target) === null) mkdirSync(target, 0o700);
    this.own(() => lchownSync(target, meta.uid, meta.gid), target);
    this.directories.set(target, meta);
    this.knownDirs.add(target);
  }

  /** Links `target` to the entry's link target, resolved inside the root; its metadata is the target's. */
  private async makeHardlink(header: TarHeader, parent: string, target: string): Promise<void> {
    const linkname = header.linkname ?? '';
    if (climbsAboveRoot(linkname)) {
      throw new TsbuildError('UNSAFE_LAYER', `hardlink ${header.name} points outside the root: ${linkname}`);
    }
    const linkRel = cleanRootRelative(linkname);
    if (linkRel === '') throw new TsbuildError('INVALID_LAYER', `hardlink ${header.name} has no usable target`);
    const source = path.join(this.resolveDir(path.posix.dirname(linkRel)), path.posix.basename(linkRel));
    const found = lstatOrNull(source);
    if (found === null || found.isDirectory()) {
      const problem = found === null ? 'does not exist' : 'is a directory';
      throw new TsbuildError('INVALID_LAYER', `hardlink ${header.name}: target ${linkname} ${problem}`);
    }
    if (source === target) return;
    this.forgetResolved();
    if (this.sharedInodes && !this.written.has(source)) await giveOwnInode(source);
    await this.prepare(parent, target, false);
    // link(2) does not follow a symlink at `source`: the link is to the symlink itself.
    await link(source, target);
  }

  /** Applies ownership when asked to; an id this user namespace does not map (EINVAL) is recorded instead. */
  private own(chown: () => void, target: string): void {
    if (!this.sameOwner) return;
    try {
      chown();
    } catch (err) {
      if (!isErrnoCode(err, 'EINVAL')) throw err;
      this.stats.unmappedOwners.push(path.relative(this.root, target));
    }
  }

  /** Ownership, mode and mtime for nodes that cannot be opened (FIFOs, devices). */
  private setPathMeta(target: string, meta: Meta): void {
    this.own(() => lchownSync(target, meta.uid, meta.gid), target);
    // `target` was just created as a FIFO or device, never a symlink, so chmod cannot escape.
    chmodSync(target, meta.mode);
    lutimesSync(target, meta.mtime, meta.mtime);
  }

  private markWritten(target: string): void {
    for (let p = target; p !== this.root && !this.written.has(p); p = path.dirname(p)) this.written.add(p);
  }
}

/** AUFS bookkeeping: a `.wh..wh.*` name other than the opaque marker, or anything under a top-level one. */
function isAufsMeta(rel: string, base: string): boolean {
  if (base === OPAQUE_MARKER) return false;
  return base.startsWith(AUFS_META_PREFIX) || rel.startsWith(AUFS_META_PREFIX);
}

function metaOf(header: TarHeader): Meta {
  const pax = header.pax ?? {};
  return {
    mode: header.mode & 0o7777,
    uid: paxNumber(pax.uid) ?? header.uid,
    gid: paxNumber(pax.gid) ?? header.gid,
    mtime: paxNumber(pax.mtime) ?? header.mtime.getTime() / 1000,
  };
}

function paxNumber(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}
