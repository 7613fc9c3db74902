import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { Duplex, PassThrough, Readable, Writable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsbuildError } from './errors.js';
import { gzipSyncInBlocks, ParallelGzip } from './parallel-gzip.js';
import { MediaType } from './types.js';

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

/** Compressed formats recognised in archives and base layers. */
export type ArchiveCompression = 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** How many leading bytes `detectCompression` and `isArchive` need to decide. */
export const SNIFF_BYTES = 262;

const ZSTD_MIN_LEVEL = -131072;
const ZSTD_MAX_LEVEL = 22;
const ZSTD_MAX_NORMAL_LEVEL = 19;

export function layerMediaType(compression: Compression): string {
  switch (compression) {
    case 'gzip':
      return MediaType.LayerGzip;
    case 'zstd':
      return MediaType.LayerZstd;
    case 'uncompressed':
      return MediaType.Layer;
  }
}

/**
 * The gzip level layers get unless one is asked for. Measured on this project's benchmark with
 * 1 MiB members: on a node_modules-like source tree level 1 compresses 7× faster than level 6 for
 * 24% more bytes (0.306 against 0.246 of the input); on log text all levels from 1 to 6 give the
 * same size within 0.5%, and level 1 is 2.4× faster; random bytes cost the same at every level.
 * A build spends seconds per 100 MB at level 6 on one core, and the layer is mostly read once.
 */
export const GZIP_DEFAULT_LEVEL = 1;

/**
 * A stream that compresses what is written to it; `level` defaults to GZIP_DEFAULT_LEVEL for gzip
 * and to zstd's own default. gzip is written as independent 1 MiB members compressed in parallel;
 * for gzip only, `doneWith` hears of input chunks it no longer reads (see ParallelGzip).
 */
export function compressStream(compression: Compression, level?: number, doneWith?: (chunk: Buffer) => void): Duplex {
  switch (compression) {
    case 'gzip':
      return new ParallelGzip(level === undefined ? GZIP_DEFAULT_LEVEL : checkLevel('gzip', level, 0, 9), undefined, doneWith);
    case 'zstd':
      return new CommandStream('zstd', ['-q', '-c', '-T1', ...zstdLevelArgs(level)], 'zstd compression');
    case 'uncompressed':
      if (level !== undefined) throw new TsbuildError('COMPRESSION_LEVEL', 'a compression level needs gzip or zstd compression');
      return new PassThrough();
  }
}

/**
 * Compresses bytes at once on this thread, exactly as `compressStream` would write them (zstd
 * needs the stream). A bad level fails here, before anything is read.
 */
export function inMemoryCompressor(compression: Exclude<Compression, 'zstd'>, level: number | undefined): (bytes: Buffer) => Buffer {
  if (compression === 'gzip') {
    const checked = level === undefined ? GZIP_DEFAULT_LEVEL : checkLevel('gzip', level, 0, 9);
    return (bytes) => gzipSyncInBlocks(checked, bytes);
  }
  if (level !== undefined) throw new TsbuildError('COMPRESSION_LEVEL', 'a compression level needs gzip or zstd compression');
  return (bytes) => bytes;
}

function zstdLevelArgs(level: number | undefined): string[] {
  if (level === undefined) return [];
  checkLevel('zstd', level, ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL);
  if (level < 0) return [`--fast=${-level}`];
  if (level > ZSTD_MAX_NORMAL_LEVEL) return ['--ultra', `-${level}`];
  return [`-${level}`];
}

function checkLevel(format: string, level: number, min: number, max: number): number {
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new TsbuildError('COMPRESSION_LEVEL', `${format} compression level must be an integer from ${min} to ${max}, got ${level}`);
  }
  return level;
}

const MAGIC: ReadonlyArray<[ArchiveCompression, number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
];

/** The compressed format `head` (a stream's first bytes) starts with, or null for anything else. */
export function detectCompression(head: Uint8Array): ArchiveCompression | null {
  for (const [format, magic] of MAGIC) {
    if (head.length >= magic.length && magic.every((byte, i) => head[i] === byte)) return format;
  }
  return null;
}

/** Whether `head` (at least SNIFF_BYTES of a file, if it has them) starts a compressed stream or a tar. */
export function isArchive(head: Uint8Array): boolean {
  if (detectCompression(head) !== null) return true;
  // POSIX ustar has "ustar\0", GNU tar "ustar "; both start with "ustar" at offset 257.
  return Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar';
}

/** The contents of `source` decompressed according to its magic bytes; anything else passes through as is. */
export async function decompressStream(source: Readable): Promise<Readable> {
  const { head, stream } = await peek(source, SNIFF_BYTES);
  const format = detectCompression(head);
  switch (format) {
    case null:
      return stream;
    case 'gzip':
      return decodeWith(stream, createGunzip(), format);
    case 'zstd':
      return decodeWith(stream, new CommandStream('zstd', ['-q', '-d', '-c'], 'zstd decompression'), format);
    case 'bzip2':
      return decodeWith(stream, new CommandStream('bzip2', ['-d', '-c'], 'bzip2 decompression'), format);
    case 'xz':
      return decodeWith(stream, new CommandStream('xz', ['-d', '-c'], 'xz decompression'), format);
  }
}

/**
 * Reads at least `n` leading bytes of `source` (fewer only if it is shorter) without losing them:
 * `stream` yields the whole content from byte 0 and replaces `source`.
 */
export function peek(source: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const parts: Buffer[] = [];
  let length = 0;
  return new Promise((resolve, reject) => {
    const stopListening = (): void => {
      source.off('readable', onReadable).off('end', onEnd).off('error', onError);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (length < n && (chunk = source.read() as Buffer | null) !== null) {
        parts.push(chunk);
        length += chunk.length;
      }
      if (length < n) return;
      stopListening();
      // Unshifting right here, in the same tick as the reads, keeps a just-drained stream from ending.
      const head = Buffer.concat(parts);
      source.unshift(head);
      resolve({ head, stream: source });
    };
    const onEnd = (): void => {
      stopListening();
      resolve({ head: Buffer.concat(parts), stream: Readable.from(parts, { objectMode: false }) });
    };
    const onError = (error: Error): void => {
      stopListening();
      reject(error);
    };
    source.on('readable', onReadable).on('end', onEnd).on('error', onError);
  });
}

function decodeWith(source: Readable, decoder: Duplex, format: ArchiveCompression): Readable {
  // Errors of either stream reach the decoder; destroying the decoder also destroys the source.
  pipeline(source, decoder, () => undefined);
  const output = Readable.from(reportingDecodeErrors(decoder, format), { objectMode: false });
  // Covers an output destroyed before it was ever read, when the generator never started.
  output.once('close', () => decoder.destroy());
  return output;
}

async function* reportingDecodeErrors(decoder: Duplex, format: ArchiveCompression): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of decoder) yield chunk as Buffer;
  } catch (error) {
    // zlib reports corrupt input with Z_* codes; tool failures are already TsbuildErrors.
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new TsbuildError('DECOMPRESS', `cannot decompress ${format} data: ${(error as Error).message}`, { cause: error });
    }
    throw error;
  }
}

const STDERR_LIMIT = 4096;

/** Streams bytes through an external command (stdin → stdout); a missing binary or a failing exit is an error. */
class CommandStream extends Duplex {
  readonly #command: string;
  readonly #args: string[];
  readonly #purpose: string;
  #child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  #stderr = '';

  /** `purpose` names what the command is needed for, in the error shown when it is not installed. */
  constructor(command: string, args: string[], purpose: string) {
    super();
    this.#command = command;
    this.#args = args;
    this.#purpose = purpose;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    const child = spawn(this.#command, this.#args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child = child;
    let started = false;
    child.once('spawn', () => {
      started = true;
      callback();
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      const reported = error.code === 'ENOENT'
        ? new TsbuildError('TOOL_MISSING', `${this.#purpose} needs the ${this.#command} command, which is not installed`)
        : error;
      if (started) this.destroy(reported);
      else callback(reported);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) child.stdout.pause();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.#stderr = (this.#stderr + chunk.toString('utf8')).slice(-STDERR_LIMIT);
    });
    // A closed stdin shows up as EPIPE; the exit status below then says what went wrong.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') this.destroy(error);
    });
    child.once('close', (code, signal) => {
      if (this.destroyed) return;
      if (code === 0 && this.writableFinished) this.push(null);
      else this.destroy(this.#failure(code, signal));
    });
  }

  #failure(code: number | null, signal: NodeJS.Signals | null): TsbuildError {
    const status = code === null ? `was killed by ${signal}` : code === 0 ? 'exited before reading all input' : `exited with status ${code}`;
    const detail = this.#stderr.trim().split('\n').join(' ');
    return new TsbuildError('COMMAND_FAILED', `${this.#command} ${status}${detail ? `: ${detail}` : ''}`);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const stdin = this.#child!.stdin;
    if (stdin.write(chunk)) callback();
    else stdin.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#child!.stdin.end();
    callback();
  }

  override _read(): void {
    this.#child!.stdout.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill();
    callback(error);
  }
}
