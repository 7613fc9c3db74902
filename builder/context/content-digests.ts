/**
 * Remembered SHA-256 digests of build-context files, so that probing the step cache after an edit
 * re-reads the edited files rather than the whole context.
 *
 * A digest is reused only while the file's stat matches the one it was taken under: size, mtime,
 * ctime, inode, device and mode. ctime cannot be set from user space: every write, chmod, chown,
 * rename or `touch -r` moves it to the current time, so an edit that keeps the size and puts the
 * mtime back is still seen. What is not seen is a change that keeps all of these, which takes
 * changing the system clock (or a file system without ctime); BuildKit likewise trusts size and
 * mtime when it syncs a context to find what changed. A file changed within the same clock tick as
 * it was read could keep its ctime too, so a digest is only remembered for a file whose last
 * change is `RACY_MS` older than the read ("racily clean", as git calls it).
 *
 * One file per context directory in the cache directory, replaced atomically on save; it holds
 * the files the last build read. Any file that is missing, unreadable or malformed is an empty
 * cache. Whoever can write the cache directory can poison it, as with the step cache itself.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, readSync, type Stats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../layers/types.js';

/** A file changed less than this before it was read may change again without moving its ctime. */
const RACY_MS = 2000;
const HEADER = 'tsbuild-context-digests 2';
const HEX_LENGTH = 64;

/**
 * Each remembered file is one line of the saved file, `<hex>\t<stamp>\t<path>`: the stamp is the
 * stat fields the digest is valid for as `stampOf` writes them, the path is context-relative and
 * JSON-quoted. A loaded line is kept as it is, and written back as it is while it still holds:
 * one string per file, and none made for a file that did not change, holds far less memory than
 * objects with their numbers; comparing stamps is comparing strings.
 */
type DigestLine = string;

export class ContentDigests {
  /** Lines read from the file, by JSON-quoted path: reused when the stamp still matches. */
  private readonly known: Map<string, DigestLine>;
  /** The lines this build used or made: what `save` writes. */
  private readonly used: DigestLine[] = [];
  private changed = false;
  /** How many files `digest` read, rather than found remembered. */
  filesRead = 0;
  /** One buffer for every read: hashing copies nothing out of it. */
  private scratch: Buffer | undefined;

  private constructor(
    private readonly file: string,
    /** The context directory, absolute. */
    private readonly root: string,
    known: Map<string, DigestLine>,
  ) {
    this.known = known;
  }

  /** The digests remembered for `contextDir` in `cacheDir`; none when there is no usable file. */
  static async load(cacheDir: string, contextDir: string): Promise<ContentDigests> {
    const root = path.resolve(contextDir);
    const name = createHash('sha256').update(root).digest('hex');
    const file = path.join(cacheDir, 'context-digests', `${name}.txt`);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      // No file yet, or an unreadable one: nothing is remembered.
    }
    return new ContentDigests(file, root, text === undefined ? new Map() : parse(text));
  }

  /**
   * The SHA-256 and length of the context file at `abs`: remembered when the file's stamp matches
   * the one it was read under, else read now through `openFile` (the call closes the descriptor).
   */
  digest(abs: string, openFile: () => number): { digest: Digest; size: number } {
    const rel = abs.startsWith(`${this.root}/`) ? abs.slice(this.root.length + 1) : path.relative(this.root, abs);
    const quoted = JSON.stringify(rel);
    // A remembered file that has not changed takes one lstat: only a file that must be read is opened.
    if (this.known.has(quoted)) {
      const seen = lstatSync(abs, { throwIfNoEntry: false });
      const remembered = seen?.isFile() ? this.remembered(quoted, stampOf(seen)) : undefined;
      if (remembered !== undefined) return { digest: remembered, size: seen!.size };
    }
    const fd = openFile();
    try {
      const stats = fstatSync(fd);
      const stamp = stampOf(stats);
      const known = this.remembered(quoted, stamp);
      if (known !== undefined) return { digest: known, size: stats.size };
      this.filesRead += 1;
      const startedMs = Date.now();
      const hash = createHash('sha256');
      const scratch = (this.scratch ??= Buffer.allocUnsafe(1024 * 1024));
      let size = 0;
      for (let read; (read = readSync(fd, scratch, 0, scratch.length, null)) > 0; size += read) hash.update(scratch.subarray(0, read));
      const hex = hash.digest('hex');
      // Kept only when nothing changed the file while it was read, and it had settled before.
      if (size === stats.size && stampOf(fstatSync(fd)) === stamp && startedMs - Math.max(stats.mtimeMs, stats.ctimeMs) >= RACY_MS) {
        this.used.push([hex, stamp, quoted].join('\t'));
        this.changed = true;
      }
      return { digest: `sha256:${hex}`, size };
    } finally {
      closeSync(fd);
    }
  }

  /** The digest remembered for the file at `quoted` (a JSON-quoted relative path) under `stamp`, now marked used. */
  private remembered(quoted: string, stamp: string): Digest | undefined {
    const known = this.known.get(quoted);
    if (known === undefined || known.length !== HEX_LENGTH + stamp.length + quoted.length + 2 || !known.startsWith(stamp, HEX_LENGTH + 1)) return undefined;
    this.used.push(known);
    return `sha256:${known.slice(0, HEX_LENGTH)}`;
  }

  /** Writes the digests this build used, when they differ from those loaded; a failure only loses the cache. */
  async save(): Promise<void> {
    const lines = [HEADER, ...new Set(this.used)];
    if (lines.length === 1 || (!this.changed && lines.length - 1 === this.known.size)) return;
    const temp = `${this.file}.tmp-${process.pid}`;
    try {
      await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
      await writeFile(temp, `${lines.join('\n')}\n`, { mode: 0o600 });
      await rename(temp, this.file);
    } catch {
      await rm(temp, { force: true });
    }
  }
}

/**
 * The stat fields a remembered digest is valid for, as one string: size, mtime, ctime, inode,
 * device and mode (type and permissions). Strings made by `join`, here and for new lines, are
 * flat; template strings would keep every piece they were made of, several times the memory.
 */
function stampOf(stats: Stats): string {
  return [stats.size, stats.mtimeMs, stats.ctimeMs, stats.ino, stats.dev, stats.mode].join('\t');
}

/** Fields of a line before its path: the hex digest and the six of the stamp. */
const RECORD_FIELDS = 7;

/** The lines of a saved file by quoted path; lines that do not parse are left out, and a file of another version is empty. */
function parse(text: string): Map<string, DigestLine> {
  const known = new Map<string, DigestLine>();
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return known;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    let end = -1;
    for (let field = 0; field < RECORD_FIELDS; field++) {
      end = line.indexOf('\t', end + 1);
      if (end < 0) break;
    }
    // A path that is not the JSON string it should be never equals the quoted path of a lookup.
    if (end >= 0 && /^[0-9a-f]{64}\t/.test(line)) known.set(line.slice(end + 1), line);
  }
  return known;
}
