/**
 * Writes the entries of one layer tar under a root directory, one at a time, as applyLayer reads
 * them; the path rules and the speed notes are in apply-layer.ts.
 */
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, openSync, writeSync } from 'node:fs';
import { link, rm } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Extract } from 'tar-stream';
import { checkEntryPath, metaOf, type Meta, type TarHeader } from './apply-entry-meta.js';
import { giveOwnInode, linkedAsEntry, makeDevice, makeFifo } from './apply-nodes.js';
import type { Xattrs } from './apply-pax-xattrs.js';
import { removeLowerChildren, removeLowerContent } from './apply-whiteouts.js';
import type { EntryType } from './entry.js';
import { TsbuildError } from './errors.js';
import { isErrnoCode } from './fs-util.js';
import { cleanRootRelative, climbsAboveRoot, secureJoinBelow } from './secure-join.js';

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

/** applyLayer's options (see ApplyOptions), all given. */
export interface ApplierOptions {
  readonly sameOwner: boolean;
  readonly sharedInodes: boolean;
  readonly skipRootNonDirectories: boolean;
  readonly linkSources: ReadonlyMap<string, string>;
  /** Turns an error met while reading an entry's contents into the one to throw. */
  readonly readFailure: (err: unknown) => unknown;
}

/** One entry as the tar reader emits it: a stream of its contents with its header. */
export type TarEntry = Extract extends AsyncIterable<infer E> ? E : never;

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** Other `.wh..wh.` names are AUFS bookkeeping, not content, and are skipped like containerd does. */
const AUFS_META_PREFIX = '.wh..wh.';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export class LayerApplier {
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
  /**
   * Absolute paths of directories this layer created, all of whose contents it wrote (and so has
   * in `written`); see `forgetResolved`. A path in one that is not in `written` is free.
   */
  private readonly madeDirs = new Set<string>();
  private readonly canMknod = isRoot();

  constructor(
    private readonly root: string,
    private readonly options: ApplierOptions,
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
      if (header.type === 'directory' || this.options.skipRootNonDirectories) return;
      throw new TsbuildError('UNSAFE_LAYER', `entry ${header.name} of type ${header.type} would replace the root`);
    }

    const parent = this.resolveDir(dirRel);
    const target = path.join(parent, base);
    // A link source is for the entry's own path, not for wherever a symlink of this layer sends it.
    const linkSource = this.options.sameOwner && target === path.join(this.root, rel) ? this.options.linkSources.get(rel) : undefined;
    const kind = await this.applyEntry(entry, header, parent, target, linkSource);
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
    this.madeDirs.clear();
  }

  /** Creates one non-whiteout entry at `target`; returns its kind, or undefined when it was skipped. */
  private async applyEntry(entry: TarEntry, header: TarHeader, parent: string, target: string, linkSource: string | undefined): Promise<EntryType | undefined> {
    const meta = metaOf(header);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        await this.prepare(parent, target, false);
        if (linkSource !== undefined && linkedAsEntry(linkSource, target, header.size ?? 0, meta)) entry.resume();
        else await this.writeFile(entry, target, meta);
        return 'file';
      case 'directory':
        entry.resume();
        this.makeDirectory(target, meta, await this.prepare(parent, target, true));
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
   * create the entry with calls that fail rather than follow a symlink at `target`. Returns whether
   * a directory stays at `target`.
   */
  private async prepare(parent: string, target: string, wantDirectory: boolean): Promise<boolean> {
    this.ensureDirectory(parent);
    if (this.madeDirs.has(parent) && !this.written.has(target)) return false;
    const existing = lstatOrNull(target);
    if (existing === null) return false;
    if (wantDirectory && existing.isDirectory()) return true;
    this.forgetResolved();
    await rm(target, { recursive: true, force: true });
    return false;
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
          this.madeDirs.add(current);
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
      throw this.options.readFailure(err);
    }
  }

  private makeDirectory(target: string, meta: Meta, exists: boolean): void {
    if (!exists) {
      mkdirSync(target, 0o700);
      this.madeDirs.add(target);
    }
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
    if (this.options.sharedInodes && !this.written.has(source)) await giveOwnInode(source);
    await this.prepare(parent, target, false);
    // link(2) does not follow a symlink at `source`: the link is to the symlink itself.
    await link(source, target);
  }

  /** Applies ownership when asked to; an id this user namespace does not map (EINVAL) is recorded instead. */
  private own(chown: () => void, target: string): void {
    if (!this.options.sameOwner) return;
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

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}
