import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { createGzip, gzipSync, type ZlibOptions } from 'node:zlib';

/** Input bytes per gzip member: large enough that restarting the dictionary costs well under 1% in size. */
export const GZIP_BLOCK_BYTES = 1024 * 1024;

/**
 * zlib's output buffer size per member. A member's output is passed on as slices of these buffers,
 * never copied into one, so the only memory it allocates is about its compressed size; a larger
 * buffer would stay held by the small output of compressible data, a smaller one costs more trips
 * through the thread pool for data that does not compress.
 */
const MEMBER_CHUNK_BYTES = 64 * 1024;

/**
 * How a block is judged not worth deflating: its bytes are sampled in SAMPLE_SLICES slices of
 * SAMPLE_SLICE_BYTES spread over it, and a block whose sample has at least STORED_ENTROPY_BITS of
 * order-0 entropy per byte is stored (level 0). Deflate spends about 20 ms per MiB on random or
 * already compressed bytes (at level 1 as at 9) to gain under 1%, storing costs a few ms, and the
 * sample is counted in tens of microseconds. Random bytes measure about 7.99 on the sample, text
 * and executables 4 to 6.5. The choice depends on the block's bytes only, so output stays the same.
 */
const SAMPLE_SLICES = 4;
const SAMPLE_SLICE_BYTES = 4096;
const STORED_ENTROPY_BITS = 7.95;
const STORED_LEVEL = 0;
/** Room for a stored member's framing beyond its block: 18 bytes of gzip header and trailer, 5 per 64 KiB. */
const STORED_SLACK_BYTES = 1024;

/** Whether `block`'s sampled bytes look incompressible (see STORED_ENTROPY_BITS). */
export function looksIncompressible(block: Buffer): boolean {
  if (block.length < SAMPLE_SLICES * SAMPLE_SLICE_BYTES) return false;
  const counts = new Uint32Array(256);
  const stride = Math.floor(block.length / SAMPLE_SLICES);
  for (let slice = 0; slice < SAMPLE_SLICES; slice++) {
    const start = slice * stride;
    for (let at = start; at < start + SAMPLE_SLICE_BYTES; at++) counts[block[at]!]!++;
  }
  const total = SAMPLE_SLICES * SAMPLE_SLICE_BYTES;
  let bits = 0;
  for (const count of counts) if (count > 0) bits -= (count / total) * Math.log2(count / total);
  return bits >= STORED_ENTROPY_BITS;
}

/** How one block is compressed into its member: stored when it looks incompressible. */
function memberOptions(level: number, block: Buffer): ZlibOptions {
  // A stored member is as large as its block: one buffer takes it whole, in one trip through the thread pool.
  if (level > STORED_LEVEL && looksIncompressible(block)) return { level: STORED_LEVEL, chunkSize: block.length + STORED_SLACK_BYTES };
  return { level, chunkSize: MEMBER_CHUNK_BYTES };
}

/**
 * `bytes` compressed on this thread, at once: the same members a ParallelGzip stream at `level`
 * makes of them, without the stream and the thread pool. For input small enough to wait for.
 */
export function gzipSyncInBlocks(level: number, bytes: Buffer): Buffer {
  const members: Buffer[] = [];
  for (let at = 0; at < bytes.length || members.length === 0; at += GZIP_BLOCK_BYTES) {
    const block = bytes.subarray(at, at + GZIP_BLOCK_BYTES);
    members.push(gzipSync(block, memberOptions(level, block)));
  }
  return members.length === 1 ? members[0]! : Buffer.concat(members);
}

/**
 * A gzip stream compressed on several cores: the input is cut into blocks of GZIP_BLOCK_BYTES,
 * each compressed on the thread pool into a gzip member of its own, and the members are written in
 * input order. A gzip file may hold any number of members, and every reader (gunzip, Go's
 * compress/gzip, zlib) reads them as one stream. Block boundaries depend only on the byte count, so
 * the same input and level give the same bytes however the input was chunked. A block that looks
 * incompressible is stored rather than deflated (see looksIncompressible).
 */
export class ParallelGzip extends Transform {
  readonly #level: number;
  readonly #parallel: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #started = false;
  readonly #inFlight: Array<Promise<Buffer[]>> = [];
  readonly #doneWith: ((chunk: Buffer) => void) | undefined;

  /**
   * `doneWith`, if given, is called with each input chunk this stream will not read again; only
   * chunks that are exactly one block and arrive at a block boundary (a chunked tar's full
   * chunks) are reported, once their member is compressed. Other input is copied or sliced and
   * left to the collector.
   */
  constructor(level: number, parallel = availableParallelism(), doneWith?: (chunk: Buffer) => void) {
    super();
    this.#level = level;
    this.#parallel = Math.max(1, parallel);
    this.#doneWith = doneWith;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#pendingBytes === 0 && chunk.length === GZIP_BLOCK_BYTES) {
      this.#compress(chunk, this.#doneWith);
    } else {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      while (this.#pendingBytes >= GZIP_BLOCK_BYTES) this.#compress(this.#takeBlock());
    }
    this.#drainTo(this.#parallel - 1).then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    // An empty input still makes one (empty) member, as a plain gzip stream would.
    if (this.#pendingBytes > 0 || !this.#started) this.#compress(Buffer.concat(this.#pending));
    this.#pending = [];
    this.#drainTo(0).then(() => callback(), callback);
  }

  /** Writes finished members, oldest first, until at most `left` are still being compressed. */
  async #drainTo(left: number): Promise<void> {
    while (this.#inFlight.length > left) for (const part of await this.#inFlight.shift()!) this.push(part);
  }

  /** Starts compressing `block` into a member; `doneWith(block)` once zlib no longer reads it. */
  #compress(block: Buffer, doneWith?: (chunk: Buffer) => void): void {
    this.#started = true;
    const member = new Promise<Buffer[]>((resolve, reject) => {
      const parts: Buffer[] = [];
      const zlib = createGzip(memberOptions(this.#level, block));
      zlib.on('data', (part: Buffer) => parts.push(part));
      zlib.once('error', reject);
      zlib.once('end', () => {
        doneWith?.(block);
        resolve(parts);
      });
      zlib.end(block);
    });
    // Awaited in order by #drainTo; this keeps a failure of a later member from going unhandled meanwhile.
    member.catch(() => undefined);
    this.#inFlight.push(member);
  }

  /** The first GZIP_BLOCK_BYTES pending bytes, copied only when they span several chunks. */
  #takeBlock(): Buffer {
    const first = this.#pending[0]!;
    let block: Buffer;
    if (first.length >= GZIP_BLOCK_BYTES) {
      block = first.subarray(0, GZIP_BLOCK_BYTES);
      if (first.length === GZIP_BLOCK_BYTES) this.#pending.shift();
      else this.#pending[0] = first.subarray(GZIP_BLOCK_BYTES);
    } else {
      const all = Buffer.concat(this.#pending);
      block = all.subarray(0, GZIP_BLOCK_BYTES);
      this.#pending = all.length > GZIP_BLOCK_BYTES ? [all.subarray(GZIP_BLOCK_BYTES)] : [];
    }
    this.#pendingBytes -= GZIP_BLOCK_BYTES;
    return block;
  }
}
