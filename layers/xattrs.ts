/**
 * Extended attributes through the `getfattr` and `setfattr` commands (package `attr`), since Node
 * has no xattr calls. Symlinks are never followed (`-h`), values travel base64-encoded so binary
 * values such as `security.capability` stay exact, and every namespace the process may read is
 * included (`security.*`, `system.*`, and as root `trusted.*`, besides `user.*`).
 */
import { spawn } from 'node:child_process';
import { TsbuildError } from './errors.js';

/** Extended attributes of one path: name (e.g. `security.capability`) to raw value. */
export type XattrMap = Record<string, Buffer>;

/**
 * Bytes of path arguments per getfattr run. Linux allows about 2 MiB of arguments and environment
 * together (a quarter of the stack limit); this stays well below it.
 */
const ARGUMENT_BUDGET = 256 * 1024;
const FILE_LINE = '# file: ';
/** Errors that mean "no attributes here" rather than a failure: the path vanished or its filesystem has none. */
const HARMLESS_ERRORS = ['No such file or directory', 'Not a directory', 'Operation not supported'];

/**
 * The extended attributes of each of `paths` (symlinks themselves, not their targets), read in as
 * few `getfattr` runs as the argument-length limit allows. Paths without attributes, and paths that
 * no longer exist, are absent from the result.
 */
export async function readXattrs(paths: readonly string[]): Promise<Map<string, XattrMap>> {
  const result = new Map<string, XattrMap>();
  for (const batch of batches(paths)) {
    const { stdout, stderr, code } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'base64', '--absolute-names', '--', ...batch]);
    if (code !== 0) {
      const failures = stderr.split('\n').filter((line) => line !== '' && !HARMLESS_ERRORS.some((harmless) => line.includes(harmless)));
      if (failures.length > 0) throw new TsbuildError('XATTR_READ', `getfattr failed: ${failures[0]}`);
    }
    parseDump(stdout, result);
  }
  return result;
}

/** Sets `xattrs` on `path` (a symlink itself, not its target); attributes not named are left alone. */
export async function writeXattrs(path: string, xattrs: XattrMap): Promise<void> {
  await writeXattrsOfPaths(new Map([[path, xattrs]]));
}

/** Sets the attributes of many paths in one `setfattr` run; attributes not named are left alone. */
export async function writeXattrsOfPaths(byPath: ReadonlyMap<string, XattrMap>): Promise<void> {
  const lines: Buffer[] = [];
  for (const [path, xattrs] of byPath) {
    const names = Object.keys(xattrs);
    if (names.length === 0) continue;
    lines.push(Buffer.from(FILE_LINE), escape(Buffer.from(path)), Buffer.from('\n'));
    for (const name of names) {
      lines.push(escape(Buffer.from(name), true), Buffer.from(`=0s${xattrs[name].toString('base64')}\n`));
    }
    lines.push(Buffer.from('\n'));
  }
  if (lines.length === 0) return;
  const { stderr, code } = await run('setfattr', ['-h', '--restore=-'], Buffer.concat(lines));
  if (code !== 0) {
    const reason = stderr.split('\n').find((line) => line !== '') ?? `exit code ${code}`;
    throw new TsbuildError('XATTR_WRITE', `setfattr failed: ${reason}`);
  }
}

/** Splits `paths` into argument lists that each fit the budget. */
function* batches(paths: readonly string[]): Generator<string[]> {
  let batch: string[] = [];
  let bytes = 0;
  for (const path of paths) {
    const size = Buffer.byteLength(path) + 1;
    if (batch.length > 0 && bytes + size > ARGUMENT_BUDGET) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(path);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/**
 * Parses `getfattr -d -e base64` output: blocks of `# file: <path>` followed by `name=0s<base64>`
 * lines, with special bytes in paths and names written as `\ooo` octal escapes.
 */
function parseDump(dump: Buffer, into: Map<string, XattrMap>): void {
  let current: XattrMap | undefined;
  for (const line of splitLines(dump)) {
    if (line.length === 0) continue;
    const text = line.toString('latin1');
    if (text.startsWith(FILE_LINE)) {
      const path = unescape(line.subarray(FILE_LINE.length)).toString('utf8');
      current = into.get(path) ?? {};
      into.set(path, current);
      continue;
    }
    if (current === undefined) continue;
    const equals = line.indexOf(0x3d);
    const name = unescape(equals === -1 ? line : line.subarray(0, equals)).toString('utf8');
    current[name] = equals === -1 ? Buffer.alloc(0) : decodeValue(line.subarray(equals + 1).toString('latin1'));
  }
}

function splitLines(buffer: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = buffer.indexOf(0x0a); i !== -1; i = buffer.indexOf(0x0a, start)) {
    lines.push(buffer.subarray(start, i));
    start = i + 1;
  }
  if (start < buffer.length) lines.push(buffer.subarray(start));
  return lines;
}

/** A value as getfattr prints it: `0s` base64 (what we ask for), `0x` hex, or quoted text. */
function decodeValue(value: string): Buffer {
  if (value.startsWith('0s')) return Buffer.from(value.slice(2), 'base64');
  if (value.startsWith('0x')) return Buffer.from(value.slice(2), 'hex');
  const quoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  return unescape(Buffer.from(quoted, 'latin1'));
}

/** Turns `\ooo` escapes back into bytes. */
function unescape(bytes: Buffer): Buffer {
  if (!bytes.includes(0x5c)) return bytes;
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const octal = bytes.subarray(i + 1, i + 4).toString('latin1');
    if (bytes[i] === 0x5c && /^[0-7]{3}$/.test(octal)) {
      out.push(parseInt(octal, 8));
      i += 3;
    } else {
      out.push(bytes[i]);
    }
  }
  return Buffer.from(out);
}

/** Writes control bytes, backslashes (and in names `=`) as `\ooo`, as setfattr --restore reads them. */
function escape(bytes: Buffer, isName = false): Buffer {
  const out: number[] = [];
  for (const byte of bytes) {
    if (byte < 0x20 || byte === 0x7f || byte === 0x5c || (isName && (byte === 0x3d || byte === 0x20))) {
      out.push(...Buffer.from(`\\${byte.toString(8).padStart(3, '0')}`, 'latin1'));
    } else {
      out.push(byte);
    }
  }
  return Buffer.from(out);
}

interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

/** Runs an attr command in the C locale, so its messages are the ones matched above. */
function run(command: string, args: string[], input?: Buffer): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new TsbuildError('XATTR_TOOL_MISSING', `${command} is not installed; install the "attr" package to handle extended attributes`, { cause: error }));
      } else {
        reject(error);
      }
    });
    child.on('close', (code) => resolve({ stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString(), code: code ?? 1 }));
    child.stdin.end(input);
  });
}
