import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { pack } from 'tar-stream';
import { applyLayer } from '../../layers/apply-layer.js';
import { setXattr } from '../../layers/native/xattr.js';
import { requires } from '../support/requirement.js';

const isRoot = process.getuid?.() === 0;
const MTIME = new Date('2021-05-06T07:08:09Z');
const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-apply-links-'));
after(() => rm(work, { recursive: true, force: true }));

let roots = 0;

/** A source file with `content`, mode 0644, owned by this process, dated MTIME. */
async function sourceFile(name: string, content: string): Promise<string> {
  const file = path.join(work, 'sources', name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  await chmod(file, 0o644);
  await utimes(file, MTIME, MTIME);
  return file;
}

/** Applies one file entry `app/<name>` with `content` and mode 0644 to a new root, linking from `sources`. */
async function applyFile(name: string, content: string, sources: ReadonlyMap<string, string>, mode = 0o644): Promise<string> {
  const root = path.join(work, `root-${++roots}`);
  await mkdir(root);
  const packer = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of packer) chunks.push(chunk as Buffer);
  })();
  const owner = { uid: process.getuid!(), gid: process.getgid!() };
  packer.entry({ name: 'app', type: 'directory', mode: 0o755, mtime: MTIME, ...owner });
  packer.entry({ name: `app/${name}`, mode, mtime: MTIME, ...owner }, content);
  packer.finalize();
  await collected;
  await applyLayer(root, Readable.from([Buffer.concat(chunks)]), { linkSources: sources, sameOwner: true });
  return path.join(root, 'app', name);
}

test('a file whose source has the entry\'s size, owner, mode and mtime is hard-linked to it', async () => {
  const source = await sourceFile('same', 'same bytes\n');
  const placed = await applyFile('same', 'same bytes\n', new Map([['app/same', source]]));
  const [placedStats, sourceStats] = await Promise.all([lstat(placed), lstat(source)]);
  assert.equal(placedStats.ino, sourceStats.ino);
  assert.equal(sourceStats.nlink, 2);
});

test('a source that differs from the entry in mode or size is not linked: the tar\'s bytes are written', async () => {
  const source = await sourceFile('mode', 'tar bytes\n');
  const placed = await applyFile('mode', 'tar bytes\n', new Map([['app/mode', source]]), 0o600);
  assert.notEqual((await lstat(placed)).ino, (await lstat(source)).ino);
  assert.equal((await lstat(placed)).mode & 0o7777, 0o600);
  assert.equal((await lstat(source)).nlink, 1);

  const edited = await sourceFile('size', 'edited since the tar was written\n');
  const written = await applyFile('size', 'tar bytes\n', new Map([['app/size', edited]]));
  assert.equal(await readFile(written, 'utf8'), 'tar bytes\n');
  assert.equal((await lstat(edited)).nlink, 1);
});

test('a source that already has another link is not linked again, so two placed paths never share an inode', async () => {
  const source = await sourceFile('shared', 'shared\n');
  const first = await applyFile('shared', 'shared\n', new Map([['app/shared', source]]));
  const second = await applyFile('shared', 'shared\n', new Map([['app/shared', source]]));
  assert.equal((await lstat(first)).ino, (await lstat(source)).ino);
  assert.notEqual((await lstat(second)).ino, (await lstat(source)).ino);
  assert.equal(await readFile(second, 'utf8'), 'shared\n');
});

test('a source with extended attributes is not linked, since the entry has none', { skip: requires(!isRoot && 'user xattrs on this filesystem are set as root here') }, async () => {
  const source = await sourceFile('xattr', 'bytes\n');
  setXattr(source, 'user.note', Buffer.from('kept off the layer'));
  const placed = await applyFile('xattr', 'bytes\n', new Map([['app/xattr', source]]));
  assert.notEqual((await lstat(placed)).ino, (await lstat(source)).ino);
  assert.equal(await readFile(placed, 'utf8'), 'bytes\n');
});

test('a missing source, or a file not named in the map, is written from the tar', async () => {
  const placed = await applyFile('gone', 'from the tar\n', new Map([['app/gone', path.join(work, 'sources', 'no-such-file')]]));
  assert.equal(await readFile(placed, 'utf8'), 'from the tar\n');
  const source = await sourceFile('other', 'other\n');
  const unnamed = await applyFile('unnamed', 'other\n', new Map([['app/other', source]]));
  assert.equal((await lstat(unnamed)).nlink, 1);
});
