import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { TsbuildError } from '../../layers/errors.js';
import { readXattrs, writeXattrs, writeXattrsOfPaths, type XattrMap } from '../../layers/xattrs.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-xattrs-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A fresh directory holding an empty file at each of `names`. */
function filesIn(names: string[]): string[] {
  const dir = mkdtempSync(join(work, 'case-'));
  return names.map((name) => {
    writeFileSync(join(dir, name), '');
    return join(dir, name);
  });
}

/** Sets an attribute with the setfattr command, the value given as hex. */
function setfattr(path: string, name: string, hex: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', `0x${hex}`, '--', path]);
}

/** An attribute's value as hex, read with the getfattr command. */
function getfattrHex(path: string, name: string): string {
  const out = execFileSync('getfattr', ['-h', '--only-values', '-n', name, '-e', 'hex', '--', path]).toString('latin1');
  return Buffer.from(out, 'latin1').toString('hex');
}

const CAPABILITY = '0100000200200000000000000000000000000000';

test('reads binary values of every namespace from awkward paths', async () => {
  const paths = filesIn(['plain', 'with space', 'new\nline', 'back\\slash', 'ünï', '-dash', 'eq=ual']);
  for (const path of paths) setfattr(path, 'user.bin', '000a3d5c0aff');
  setfattr(paths[0], 'trusted.t', '01');
  setfattr(paths[0], 'security.capability', CAPABILITY);
  setfattr(paths[1], 'user.with\nnewline', '41');
  setfattr(paths[1], 'user.eq=ual', '42');
  const found = await readXattrs([...paths, join(work, 'missing')]);
  assert.deepEqual([...found.keys()].sort(), [...paths].sort());
  for (const path of paths.slice(2)) assert.deepEqual(found.get(path), { 'user.bin': Buffer.from('000a3d5c0aff', 'hex') }, path);
  assert.deepEqual(found.get(paths[0]), {
    'security.capability': Buffer.from(CAPABILITY, 'hex'),
    'trusted.t': Buffer.from([1]),
    'user.bin': Buffer.from('000a3d5c0aff', 'hex'),
  });
  assert.deepEqual(found.get(paths[1]), {
    'user.bin': Buffer.from('000a3d5c0aff', 'hex'),
    'user.eq=ual': Buffer.from('B'),
    'user.with\nnewline': Buffer.from('A'),
  });
});

test('paths without attributes are absent and an empty value reads as an empty buffer', async () => {
  const [bare, empty] = filesIn(['bare', 'empty']);
  execFileSync('setfattr', ['-n', 'user.empty', empty]);
  const found = await readXattrs([bare, empty]);
  assert.deepEqual([...found], [[empty, { 'user.empty': Buffer.alloc(0) }]]);
});

test('symlinks are read and written themselves, not their targets', async () => {
  const [target] = filesIn(['target']);
  const link = `${target}-link`;
  symlinkSync(target, link);
  setfattr(target, 'user.on-target', '01');
  await writeXattrs(link, { 'trusted.on-link': Buffer.from([2]) });
  const found = await readXattrs([link, target]);
  assert.deepEqual(found.get(link), { 'trusted.on-link': Buffer.from([2]) });
  assert.deepEqual(found.get(target), { 'user.on-target': Buffer.from([1]) });
});

test('writes binary values byte for byte, as getfattr reads them back', async () => {
  const [a, b] = filesIn(['a\nb\\c', 'second file']);
  const binary = Buffer.from([0, 10, 13, 0x3d, 0x5c, 0x22, 0xff, 0x80]);
  await writeXattrsOfPaths(
    new Map<string, XattrMap>([
      [a, { 'user.binary': binary, 'user.empty': Buffer.alloc(0), 'security.capability': Buffer.from(CAPABILITY, 'hex') }],
      [b, { 'trusted.x': Buffer.from('text') }],
    ]),
  );
  assert.equal(getfattrHex(a, 'user.binary'), binary.toString('hex'));
  assert.equal(getfattrHex(a, 'user.empty'), '');
  assert.equal(getfattrHex(a, 'security.capability'), CAPABILITY);
  assert.equal(getfattrHex(b, 'trusted.x'), Buffer.from('text').toString('hex'));
});

test('a path on a file system without attributes has none, and an unreadable path is a one-line TsbuildError', async () => {
  assert.deepEqual([...(await readXattrs(['/proc/self/status']))], []);
  const tooLong = join(work, 'x'.repeat(300));
  await assert.rejects(
    readXattrs([tooLong]),
    (error: unknown) => error instanceof TsbuildError && error.code === 'XATTR_READ' && /ENAMETOOLONG$/.test(error.message) && !error.message.includes('\n'),
  );
});

test('an attribute value larger than a page is read whole', async () => {
  const [file] = filesIn(['big']);
  const value = Buffer.alloc(3000, 0xab);
  setfattr(file, 'user.big', value.toString('hex'));
  assert.deepEqual((await readXattrs([file])).get(file), { 'user.big': value });
});

test('a write that the file system refuses is a TsbuildError', async () => {
  await assert.rejects(writeXattrs(join(work, 'does-not-exist'), { 'user.a': Buffer.from('b') }), (error: unknown) => error instanceof TsbuildError && error.code === 'XATTR_WRITE');
});
