import { readSync } from 'node:fs';

/** Size of the chunks a tar is produced in: a multiple of the tar block, large enough that per-chunk costs vanish. */
export const CHUNK_BYTES = 1024 * 1024;

/** Chunks kept for reuse at most: a few more than the stages of a layer hold at once. */
const POOL_LIMIT = 8;

/**
 * Whole chunks handed back for reuse once every stage that reads them is done with them. A chunk
 * of 1 MiB lives outside the V8 heap, which frees such memory only at its next full collection:
 * without reuse a layer leaves tens of MiB of finished chunks waiting for it. Each chunk taken
 * must be given back `holders` times, once by every stage that reads it, before it is reused;
 * anything else given back (a partial chunk, a copy) is ignored and left to the collector.
 */
export class ChunkPool {
  readonly #holders: number;
  readonly #free: Buffer[] = [];
  readonly #owed = new Map<Buffer, number>();

  constructor(holders: number) {
    this.#holders = holders;
  }

  take(): Buffer {
    const chunk = this.#free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
    this.#owed.set(chunk, this.#holders);
    return chunk;
  }

  /** One stage is done with `chunk`: it must not read it again. */
  giveBack(chunk: Buffer): void {
    const owed = this.#owed.get(chunk);
    if (owed === undefined) return;
    if (owed > 1) {
      this.#owed.set(chunk, owed - 1);
      return;
    }
    this.#owed.delete(chunk);
    if (this.#free.length < POOL_LIMIT) this.#free.push(chunk);
  }
}

/**
 * Collects bytes into fixed-size buffers that are filled in place and handed on once full. A
 * buffer that was handed on is not written again until it comes back through its pool, if it has one.
 */
export class ChunkFiller {
  readonly #pool: ChunkPool | undefined;
  #chunk: Buffer;
  #used = 0;
  #full: Buffer[] = [];

  constructor(pool?: ChunkPool) {
    this.#pool = pool;
    this.#chunk = this.#newChunk();
  }

  /** Copies `bytes` in. */
  append(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, CHUNK_BYTES - this.#used);
      this.#chunk.set(bytes.subarray(at, at + n), this.#used);
      this.#used += n;
      at += n;
      this.#rotateIfFull();
    }
  }

  /** Appends `count` zero bytes. */
  zeros(count: number): void {
    while (count > 0) {
      const n = Math.min(count, CHUNK_BYTES - this.#used);
      this.#chunk.fill(0, this.#used, this.#used + n);
      this.#used += n;
      count -= n;
      this.#rotateIfFull();
    }
  }

  /**
   * Zeroes the next 512 bytes and returns the buffer and offset where they are, for a tar header
   * to be written there. Only valid at a 512-byte boundary, where the block cannot straddle chunks.
   */
  reserveBlock(): [Buffer, number] {
    const chunk = this.#chunk;
    const at = this.#used;
    chunk.fill(0, at, at + 512);
    this.#used += 512;
    this.#rotateIfFull();
    return [chunk, at];
  }

  /** Reads up to `max` bytes of `fd` (from its current offset) straight into the chunk; 0 at end of file. */
  readFrom(fd: number, max: number): number {
    const read = readSync(fd, this.#chunk, this.#used, Math.min(max, CHUNK_BYTES - this.#used), null);
    this.#used += read;
    this.#rotateIfFull();
    return read;
  }

  /** The chunks filled so far, now owned by the caller. */
  takeFull(): Buffer[] {
    if (this.#full.length === 0) return NONE;
    const full = this.#full;
    this.#full = [];
    return full;
  }

  /** Every chunk, the last one cut to what it holds. */
  takeAll(): Buffer[] {
    const all = this.takeFull();
    return this.#used === 0 ? all : [...all, this.#chunk.subarray(0, this.#used)];
  }

  #rotateIfFull(): void {
    if (this.#used < CHUNK_BYTES) return;
    this.#full.push(this.#chunk);
    this.#chunk = this.#newChunk();
    this.#used = 0;
  }

  #newChunk(): Buffer {
    return this.#pool ? this.#pool.take() : Buffer.allocUnsafe(CHUNK_BYTES);
  }
}

const NONE: Buffer[] = [];
