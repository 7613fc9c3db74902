import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { fileContents, SMALL_FILE_BYTES } from '../../../builder/fs/file-contents.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tsbuild-file-contents-'));
  dirs.push(dir);
  return dir;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test('small, empty and large files read back byte for byte, every time the stream is opened', async () => {
  const dir = await tempDir();
  const small = Buffer.from('console.log(1);\n');
  const large = Buffer.alloc(SMALL_FILE_BYTES * 2 + 3, 'x');
  await writeFile(path.join(dir, 'small.js'), small);
  await writeFile(path.join(dir, 'empty'), '');
  await writeFile(path.join(dir, 'large.bin'), large);
  for (let i = 0; i < 2; i++) assert.deepEqual(await readAll(fileContents(path.join(dir, 'small.js'), small.length)), small);
  assert.equal((await readAll(fileContents(path.join(dir, 'empty'), 0))).length, 0);
  assert.deepEqual(await readAll(fileContents(path.join(dir, 'large.bin'), large.length)), large);
});

test('a small file that grew is read one byte past its expected size, so the reader sees the change', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'grows');
  await writeFile(file, 'abc');
  await appendFile(file, 'defgh');
  assert.equal((await readAll(fileContents(file, 3))).toString(), 'abcd');
});

test('a small file replaced by a symlink or a FIFO, or removed, fails the stream instead of being followed or blocking', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'swapped');
  await writeFile(path.join(dir, 'secret'), 'do not read');
  await symlink(path.join(dir, 'secret'), file);
  await assert.rejects(readAll(fileContents(file, 5)), (err: NodeJS.ErrnoException) => err.code === 'ELOOP');
  await unlink(file);
  await promisify(execFile)('mkfifo', [file]);
  await assert.rejects(readAll(fileContents(file, 5)), /no longer a regular file/);
  await assert.rejects(readAll(fileContents(path.join(dir, 'missing'), 5)), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
});
