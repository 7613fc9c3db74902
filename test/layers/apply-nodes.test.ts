import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstat, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { makeDevice, makeFifo } from '../../layers/apply-nodes.js';
import { TsbuildError } from '../../layers/errors.js';
import { requires } from '../support/requirement.js';

const isRoot = process.getuid?.() === 0;

describe('makeFifo and makeDevice', () => {
  let dir: string;

  before(async () => {
    dir = await realpath(await mkdtemp(path.join(tmpdir(), 'tsbuild-nodes-')));
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('makeFifo creates a FIFO with mode 0600', async () => {
    const target = path.join(dir, 'fifo');
    await makeFifo(target);
    const st = await lstat(target);
    assert.ok(st.isFIFO());
    assert.equal(st.mode & 0o7777, 0o600);
  });

  test('an existing path, even a symlink, is an error and is not followed', async () => {
    const file = path.join(dir, 'file');
    await writeFile(file, 'x');
    const link = path.join(dir, 'link');
    await symlink(path.join(dir, 'link-target'), link);
    for (const target of [file, link]) {
      await assert.rejects(makeFifo(target), (err) => err instanceof TsbuildError && err.code === 'SPECIAL_FILE');
    }
    assert.ok((await lstat(file)).isFile());
    assert.equal(await lstat(path.join(dir, 'link-target')).catch(() => null), null);
  });

  test('makeDevice creates character and block devices', { skip: requires(!isRoot && 'needs root') }, async () => {
    const chr = path.join(dir, 'null');
    const blk = path.join(dir, 'loop9');
    await makeDevice(chr, 'char', 1, 3);
    await makeDevice(blk, 'block', 7, 9);
    const c = await lstat(chr);
    assert.ok(c.isCharacterDevice());
    assert.deepEqual([(c.rdev >> 8) & 0xfff, c.rdev & 0xff], [1, 3]);
    const b = await lstat(blk);
    assert.ok(b.isBlockDevice());
    assert.deepEqual([(b.rdev >> 8) & 0xfff, b.rdev & 0xff], [7, 9]);
    assert.equal(b.mode & 0o7777, 0o600);
  });

  test('in a user namespace, where the kernel refuses device nodes, makeDevice creates nothing and says so', async () => {
    const target = path.join(dir, 'console');
    const module = new URL('../../layers/apply-nodes.js', import.meta.url).href;
    const script = `import(${JSON.stringify(module)}).then((m) => m.makeDevice(${JSON.stringify(target)}, 'char', 5, 1)).then((made) => process.stdout.write(String(made)))`;
    const { stdout } = await promisify(execFile)('unshare', ['--user', '--map-root-user', process.execPath, '-e', script]);
    assert.equal(stdout, 'false');
    assert.equal(await lstat(target).catch(() => null), null);
  });
});
