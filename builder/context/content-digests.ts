/**
 * Remembered SHA-256 digests of build-context files, so that probing the step cache after an edit
 * re-reads the edited files rather than the whole context.
 *
 * A digest is reused only while the file's stat matches the one it was taken under: size, mtime,
 * ctime, inode, device and mode. ctime cannot be set from user space: every write, chmod, chown,
 * rename or `touch -r` moves it to the current time, so an edit that keeps the size and puts the
 * mtime back is still seen. What is not seen is a change that keeps all of these, which takes
 * changing the system clock (or a file system without ctime); Docker and BuildKit likewise trust
 * file metadata to find what changed in a context. A file changed within the same clock tick as
 * it was read could keep its ctime too, so a digest is only remembered for a file whose last
 * change is `RACY_MS` older than the read ("racily clean", as git calls it).
 *
 * One file per context directory in the cache directory, replaced atomically on save; it holds
 * the files the last build read. Any file that is missing, unreadable or malformed is an empty
 * cache. Whoever can write the cache directory can poison it, as with the step cache itself.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, readSync, type Stats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../layers/types.js';

/** The stat fields a remembered digest is valid for. */
export interface FileStamp {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ctimeMs: number;
  readonly ino: number;
  readonly dev: number;
  /** The whole st_mode: type and permission bits. */
  readonly mode: number;
}

interface Remembered extends FileStamp {
  /** Hex SHA-256 of the contents. */
  readonly hex: string;
}

/** A file changed less than this before it was read may change again without moving its ctime. */
const RACY_MS = 2000;
const HEADER = 'tsbuild-context-digests 1';
/** Fields of a line before the JSON-quoted path. */
const FIELDS = 7;

export class ContentDigests {
  /** Digests read from the file: reused when the stat still matches. */
  private readonly known: Map<string, Remembered>;
  /** Digests this build used or computed: what `save` writes. */
  private readonly used = new Map<string, Remembered>();
  private changed = false;
  /** How many files `digest` read, rather than found remembered. */
  filesRead = 0;
  /** One buffer for every read: hashing copies nothing out of it. */
  private scratch: Buffer | undefined;

  private constructor(
    private readonly file: string,
    /** The context directory, absolute. */
    private readonly root: string,
    known: Map<string, Remembered>,
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
   * The SHA-256 and length of the context file at `abs`, opened through `openFile` (the call closes
   * the descriptor): remembered when the open file's stat matches the one it was read under, else
   * read now.
   */
  digest(abs: string, openFile: () => number): { digest: Digest; size: number } {
    const rel = path.relative(this.root, abs);
    const fd = openFile();
    try {
      const stamp = stampOf(fstatSync(fd));
      const known = this.known.get(rel);
      if (known !== undefined && sameStamp(known, stamp)) {
        this.used.set(rel, known);
        return { digest: `sha256:${known.hex}`, size: known.size };
      }
      this.filesRead += 1;
      const startedMs = Date.now();
      const hash = createHash('sha256');
      const scratch = (this.scratch ??= Buffer.allocUnsafe(1024 * 1024));
      let size = 0;
      for (let read; (read = readSync(fd, scratch, 0, scratch.length, null)) > 0; size += read) hash.update(scratch.subarray(0, read));
      const hex = hash.digest('hex');
      // Kept only when nothing changed the file while it was read, and it had settled before.
      if (size === stamp.size && sameStamp(stampOf(fstatSync(fd)), stamp) && startedMs - Math.max(stamp.mtimeMs, stamp.ctimeMs) >= RACY_MS) {
        this.used.set(rel, { ...stamp, hex });
        this.changed = true;
      }
      return { digest: `sha256:${hex}`, size };
    } finally {
      closeSync(fd);
    }
  }

  /** Writes the digests this build used, when they differ from those loaded; a failure only loses the cache. */
  async save(): Promise<void> {
    if (!this.changed && this.used.size === this.known.size) return;
    if (this.used.size === 0) return;
    const lines = [HEADER];
    for (const [rel, r] of this.used) lines.push(`${r.hex}\t${r.size}\t${r.mtimeMs}\t${r.ctimeMs}\t${r.ino}\t${r.dev}\t${r.mode}\t${JSON.stringify(rel)}`);
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

/** The stamp of an lstat (or fstat) result. */
export function stampOf(stats: Stats): FileStamp {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, dev: stats.dev, mode: stats.mode };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.dev === b.dev && a.mode === b.mode;
}

/** The entries of a saved file; lines that do not parse are left out, and a file of another version is empty. */
function parse(text: string): Map<string, Remembered> {
  const known = new Map<string, Remembered>();
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return known;
  for (let i = 1; i < lines.length; i++) {
    const parts = lines[i]!.split('\t');
    if (parts.length < FIELDS + 1) continue;
    const [hex, ...numbers] = parts.slice(0, FIELDS);
    const [size, mtimeMs, ctimeMs, ino, dev, mode] = numbers.map(Number) as [number, number, number, number, number, number];
    let rel: unknown;
    try {
      rel = JSON.parse(parts.slice(FIELDS).join('\t'));
    } catch {
      continue;
    }
    if (typeof rel !== 'string' || !/^[0-9a-f]{64}$/.test(hex!) || [size, mtimeMs, ctimeMs, ino, dev, mode].some((n) => !Number.isFinite(n))) continue;
    known.set(rel, { hex: hex!, size, mtimeMs, ctimeMs, ino, dev, mode });
  }
  return known;
}
