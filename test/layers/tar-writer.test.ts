import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, constants, createReadStream, lstatSync, openSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { extract, type Header } from 'tar-stream';
import type { LayerEntry } from '../../layers/entry.js';
import { TsbuildError } from '../../layers/errors.js';
import { layerTar, layerTarBytes, type TarOptions } from '../../layers/tar-writer.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-tar-writer-'));
after(() => rmSync(work, { recursive: true, force: true }));
let counter = 0;

const BASE = { mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000 };

function file(path: string, content: string | Buffer, extra: Partial<LayerEntry> = {}): LayerEntry {
  const bytes = Buffer.from(content);
  return { ...BASE, path, type: 'file', size: bytes.length, open: () => Readable.from([bytes]), ...extra };
}

function dir(path: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { ...BASE, mode: 0o755, path, type: 'directory', ...extra };
}

function entry(type: LayerEntry['type'], path: string, extra: Partial<LayerEntry> = {}): LayerEntry {
  return { ...BASE, path, type, ...extra };
}

async function tarOf(entries: Iterable<LayerEntry> | AsyncIterable<LayerEntry>, options: TarOptions = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of layerTar(entries, options)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function tarFileOf(entries: LayerEntry[], options: TarOptions = {}): Promise<string> {
  const path = join(work, `layer-${++counter}.tar`);
  writeFileSync(path, await tarOf(entries, options));
  return path;
}

interface Listed {
  type: string;
  perms: string;
  owner: string;
  sizeOrDevice: string;
  time: string;
  name: string;
  link?: string;
}

/** GNU tar's verbose listing, one parsed line per member, times in UTC. */
function gnuList(tarPath: string): Listed[] {
  const text = execFileSync('tar', ['-tvv', '--full-time', '--numeric-owner', '--quoting-style=literal', '-f', tarPath], {
    env: { ...process.env, TZ: 'UTC' },
  }).toString('utf8');
  return text.trimEnd().split('\n').map((line) => {
    const match = /^(.)(\S{9}) (\d+\/\d+) +(\S+) (\S+ \S+) (.*)$/.exec(line);
    assert.ok(match, `unexpected listing line ${line}`);
    const [, type, perms, owner, sizeOrDevice, time, rest] = match as unknown as string[];
    const link = / -> | link to /.exec(rest!);
    return link
      ? { type: type!, perms: perms!, owner: owner!, sizeOrDevice: sizeOrDevice!, time: time!, name: rest!.slice(0, link.index), link: rest!.slice(link.index + link[0].length) }
      : { type: type!, perms: perms!, owner: owner!, sizeOrDevice: sizeOrDevice!, time: time!, name: rest! };
  });
}

function gnuExtract(tarPath: string): string {
  const dest = mkdtempSync(join(work, 'extract-'));
  execFileSync('tar', ['-x', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-f', tarPath, '-C', dest]);
  return dest;
}

/** Every member as tar-stream's extract sees it, with its contents. */
async function parse(tar: Buffer): Promise<{ header: Header; body: Buffer }[]> {
  const members: { header: Header; body: Buffer }[] = [];
  const extractor = extract();
  const done = (async () => {
    for await (const member of extractor) {
      const parts: Buffer[] = [];
      for await (const chunk of member) parts.push(chunk as Buffer);
      members.push({ header: member.header, body: Buffer.concat(parts) });
    }
  })();
  extractor.end(tar);
  await done;
  return members;
}

function isCode(code: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof TsbuildError, `expected a TsbuildError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = randomBytes(4).readUInt32LE() % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

function richLayer(): LayerEntry[] {
  return [
    dir('usr'),
    dir('usr/bin'),
    file('usr/bin/tool', 'binary contents\n', { mode: 0o4755, uid: 0, gid: 50 }),
    file('usr/bin/group-tool', 'sgid\n', { mode: 0o2711 }),
    dir('tmp', { mode: 0o1777 }),
    entry('symlink', 'usr/bin/alias', { mode: 0o777, linkTarget: 'tool' }),
    entry('hardlink', 'usr/bin/tool-copy', { linkTarget: 'usr/bin/tool' }),
    entry('fifo', 'run-pipe', { mode: 0o620, uid: 12, gid: 34 }),
    entry('char', 'null', { mode: 0o666, devMajor: 1, devMinor: 3 }),
    entry('block', 'loop0', { mode: 0o660, devMajor: 7, devMinor: 0 }),
    file('home/user/notes.txt', 'owned by someone\n', { uid: 1000, gid: 1000, mode: 0o600 }),
    dir('home', { uid: 0 }),
    dir('home/user', { uid: 1000, gid: 1000, mode: 0o700 }),
    file('empty', ''),
  ];
}

test('GNU tar lists every entry type with the metadata it was given', async () => {
  const listed = gnuList(await tarFileOf(richLayer()));
  const byName = new Map(listed.map((member) => [member.name, member]));
  const expect = (name: string, fields: Partial<Listed>): void => {
    const member = byName.get(name);
    assert.ok(member, `${name} missing from ${[...byName.keys()].join(', ')}`);
    for (const [key, value] of Object.entries(fields)) assert.equal(member[key as keyof Listed], value, `${name} ${key}`);
  };
  expect('usr/', { type: 'd', perms: 'rwxr-xr-x', owner: '0/0', time: '2020-09-13 12:26:40' });
  expect('usr/bin/tool', { type: '-', perms: 'rwsr-xr-x', owner: '0/50', sizeOrDevice: '16' });
  expect('usr/bin/group-tool', { type: '-', perms: 'rwx--s--x' });
  expect('tmp/', { type: 'd', perms: 'rwxrwxrwt' });
  expect('usr/bin/alias', { type: 'l', link: 'tool' });
  expect('usr/bin/tool-copy', { type: 'h', link: 'usr/bin/tool' });
  expect('run-pipe', { type: 'p', perms: 'rw--w----', owner: '12/34' });
  expect('null', { type: 'c', sizeOrDevice: '1,3' });
  expect('loop0', { type: 'b', sizeOrDevice: '7,0' });
  expect('home/user/notes.txt', { owner: '1000/1000', perms: 'rw-------' });
  expect('empty', { type: '-', sizeOrDevice: '0' });
  assert.equal(listed.length, richLayer().length);
});

test('GNU tar extracts the layer with modes, owners, times, links and special files intact', async () => {
  const root = gnuExtract(await tarFileOf(richLayer()));
  const stat = (path: string) => lstatSync(join(root, path));
  assert.equal(stat('usr/bin/tool').mode & 0o7777, 0o4755);
  assert.equal(stat('usr/bin/tool').gid, 50);
  assert.equal(stat('usr/bin/group-tool').mode & 0o7777, 0o2711);
  assert.equal(stat('tmp').mode & 0o7777, 0o1777);
  assert.equal(stat('usr/bin/tool').mtimeMs, 1_600_000_000_000);
  assert.equal(readFileSync(join(root, 'usr/bin/tool'), 'utf8'), 'binary contents\n');
  assert.equal(readlinkSync(join(root, 'usr/bin/alias')), 'tool');
  assert.equal(stat('usr/bin/tool-copy').ino, stat('usr/bin/tool').ino);
  assert.ok(stat('run-pipe').isFIFO());
  assert.equal(stat('run-pipe').uid, 12);
  assert.ok(stat('null').isCharacterDevice());
  assert.equal(stat('null').rdev, statSync('/dev/null').rdev);
  assert.ok(stat('loop0').isBlockDevice());
  assert.equal(stat('home/user/notes.txt').uid, 1000);
  assert.equal(stat('home/user').mode & 0o7777, 0o700);
});

test('the same entries in any order give byte-identical tars', async () => {
  const first = await tarOf(richLayer());
  assert.deepEqual(await tarOf(richLayer()), first);
  for (let i = 0; i < 5; i++) assert.deepEqual(await tarOf(shuffled(richLayer())), first);
  async function* slowly(): AsyncGenerator<LayerEntry> {
    for (const item of shuffled(richLayer())) {
      await new Promise((resolve) => setImmediate(resolve));
      yield item;
    }
  }
  assert.deepEqual(await tarOf(slowly()), first);
});

test('parents come before children, whiteouts before their siblings, otherwise bytewise by component', async () => {
  const names = gnuList(
    await tarFileOf(
      shuffled([
        dir('a'),
        dir('a/b'),
        file('a/b/c', 'x'),
        file('a-b', 'x'),
        file('a/-dash', 'x'),
        file('a/B', 'x'),
        file('a/é', 'x'),
        file('a/z', 'x'),
        entry('whiteout', 'a/gone'),
        entry('opaque', 'a'),
        entry('whiteout', 'top'),
        file('0', 'x'),
      ]),
    ),
  ).map((member) => member.name);
  assert.deepEqual(names, ['.wh.top', '0', 'a/', 'a/.wh..wh..opq', 'a/.wh.gone', 'a/-dash', 'a/B', 'a/b/', 'a/b/c', 'a/z', 'a/é', 'a-b']);
});

test('names beyond the Basic Multilingual Plane sort by their UTF-8 bytes, not their UTF-16 code units', async () => {
  // U+E000 and U+FFFD have code units above a surrogate pair's but UTF-8 bytes below those of U+1F600.
  const tar = await tarOf(shuffled([file('\u{1F600}', 'x'), file('\u{E000}', 'x'), file('\u{FFFD}', 'x'), file('\u{1F600}x', 'x'), file('z', 'x')]));
  const names = (await parse(tar)).map(({ header }) => header.name);
  const expected = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  assert.deepEqual(names, ['z', '\u{E000}', '\u{FFFD}', '\u{1F600}', '\u{1F600}x']);
  assert.deepEqual(names, expected);
});

test('whiteouts are empty regular files with mode 0 and owner 0 whatever the entry said', async () => {
  const path = await tarFileOf([
    entry('whiteout', 'etc/passwd', { mode: 0o644, uid: 7, gid: 8, mtime: 1_000 }),
    entry('opaque', 'var/cache', { mode: 0o755, uid: 7, gid: 8, mtime: 2_000 }),
    entry('opaque', ''),
  ]);
  assert.deepEqual(gnuList(path), [
    { type: '-', perms: '---------', owner: '0/0', sizeOrDevice: '0', time: '2020-09-13 12:26:40', name: '.wh..wh..opq' },
    { type: '-', perms: '---------', owner: '0/0', sizeOrDevice: '0', time: '1970-01-01 00:16:40', name: 'etc/.wh.passwd' },
    { type: '-', perms: '---------', owner: '0/0', sizeOrDevice: '0', time: '1970-01-01 00:33:20', name: 'var/cache/.wh..wh..opq' },
  ]);
});

test('sourceDateEpoch clamps later mtimes, keeps earlier ones, and changes nothing else', async () => {
  const epoch = 1_500_000_000;
  const entries = [
    file('old', 'x', { mtime: 1_000_000_000 }),
    file('new', 'x', { mtime: 1_700_000_000 }),
    file('fractional', 'x', { mtime: 1_400_000_000.75 }),
    dir('d', { mtime: 1_900_000_000 }),
    entry('whiteout', 'd/gone', { mtime: 1_900_000_000 }),
  ];
  const members = await parse(await tarOf(entries, { sourceDateEpoch: epoch }));
  const seconds = Object.fromEntries(members.map(({ header }) => [header.name, header.mtime.getTime() / 1000]));
  assert.deepEqual(seconds, { 'd/': epoch, 'd/.wh.gone': epoch, fractional: 1_400_000_000, new: epoch, old: 1_000_000_000 });
  // Without an epoch the times are kept.
  const unclamped = await parse(await tarOf(entries));
  assert.equal(unclamped.find((member) => member.header.name === 'new')?.header.mtime.getTime(), 1_700_000_000_000);
});

test('long names, long link targets and non-ASCII names survive through PAX records', async () => {
  const longDir = `${'deep/'.repeat(30)}${'x'.repeat(120)}`;
  const longFile = `${longDir}/${'f'.repeat(150)}`;
  const target = `/opt/${'t'.repeat(300)}`;
  const tarPath = await tarFileOf([
    dir(longDir),
    file(longFile, 'deep contents'),
    entry('symlink', 'link', { linkTarget: target }),
    entry('hardlink', 'hard', { linkTarget: longFile }),
    file('naïve-日本.txt', 'unicode'),
    entry('symlink', 'ünï-link', { linkTarget: 'naïve-日本.txt' }),
  ]);
  const listed = gnuList(tarPath);
  assert.deepEqual(
    listed.map((member) => [member.name, member.link]),
    [
      [`${longDir}/`, undefined],
      [longFile, undefined],
      ['hard', longFile],
      ['link', target],
      ['naïve-日本.txt', undefined],
      ['ünï-link', 'naïve-日本.txt'],
    ],
  );
  const root = gnuExtract(tarPath);
  assert.equal(readFileSync(join(root, longFile), 'utf8'), 'deep contents');
  assert.equal(readlinkSync(join(root, 'link')), target);
  assert.equal(lstatSync(join(root, 'hard')).ino, lstatSync(join(root, longFile)).ino);
  assert.equal(readFileSync(join(root, 'naïve-日本.txt'), 'utf8'), 'unicode');
});

test('xattrs are written as SCHILY.xattr PAX records, binary values byte for byte', async () => {
  const binary = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0x0a, 0x3d, 0x00]);
  const tar = await tarOf([
    file('bin/ping', 'ping', { xattrs: { 'security.capability': binary, 'user.comment': Buffer.from('héllo wörld') } }),
    dir('bin', { xattrs: { 'user.z': Buffer.from('last'), 'user.a': Buffer.from('first') } }),
  ]);
  const members = await parse(tar);
  const pax = (name: string): Record<string, string> => members.find((member) => member.header.name === name)?.header.pax as Record<string, string>;
  assert.equal(pax('bin/ping')['SCHILY.xattr.user.comment'], 'héllo wörld');
  assert.deepEqual(Object.keys(pax('bin/')).filter((key) => key.startsWith('SCHILY')), ['SCHILY.xattr.user.a', 'SCHILY.xattr.user.z']);
  assert.equal(members.find((member) => member.header.name === 'bin/ping')?.body.toString(), 'ping');
  // The binary value is in the archive exactly, with a length prefix counting the whole record.
  const record = Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), binary, Buffer.from('\n')]);
  const withLength = Buffer.concat([Buffer.from(String(record.length + 2)), record]);
  assert.ok(tar.includes(withLength), 'binary xattr record not found');
  // GNU tar reads the records and reports each value's length.
  const tarPath = join(work, 'xattrs.tar');
  writeFileSync(tarPath, tar);
  const listing = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvvvf', tarPath]).toString();
  assert.match(listing, new RegExp(`x: ${binary.length} security\\.capability`));
  assert.match(listing, new RegExp(`x: ${Buffer.byteLength('héllo wörld')} user\\.comment`));
});

test('ids and times beyond ustar limits are carried by PAX records', async () => {
  const tarPath = await tarFileOf([
    file('big-ids', 'x', { uid: 3_000_000, gid: 262_144 }),
    file('future', 'x', { mtime: 4_102_444_800 }),
    file('past', 'x', { mtime: -86_400 }),
  ]);
  const listed = gnuList(tarPath);
  assert.deepEqual(
    listed.map((member) => [member.name, member.owner, member.time]),
    [
      ['big-ids', '3000000/262144', '2020-09-13 12:26:40'],
      ['future', '0/0', '2100-01-01 00:00:00'],
      ['past', '0/0', '1969-12-31 00:00:00'],
    ],
  );
});

test('entries that would make an unsafe or ambiguous layer are refused', async () => {
  const cases: [LayerEntry[], string][] = [
    [[file('/etc/passwd', 'x')], 'TAR_PATH'],
    [[file('a/../../etc/passwd', 'x')], 'TAR_PATH'],
    [[file('a/./b', 'x')], 'TAR_PATH'],
    [[file('a//b', 'x')], 'TAR_PATH'],
    [[file('', 'x')], 'TAR_PATH'],
    [[dir('a/')], 'TAR_PATH'],
    [[file('a/.wh.b', 'x')], 'TAR_WHITEOUT_NAME'],
    [[dir('.wh..wh..opq')], 'TAR_WHITEOUT_NAME'],
    [[entry('whiteout', 'a/.wh.b')], 'TAR_WHITEOUT_NAME'],
    [[file('a', 'x'), dir('a')], 'TAR_DUPLICATE'],
    [[file('a', 'x'), file('a', 'y')], 'TAR_DUPLICATE'],
    [[entry('whiteout', 'a'), entry('whiteout', 'a')], 'TAR_DUPLICATE'],
    [[entry('hardlink', 'a', { linkTarget: 'b' }), file('b', 'x')], 'TAR_HARDLINK'],
    [[entry('hardlink', 'a', { linkTarget: 'missing' })], 'TAR_HARDLINK'],
    [[dir('d'), entry('hardlink', 'e', { linkTarget: 'd' })], 'TAR_HARDLINK'],
    [[file('b', 'x'), entry('hardlink', 'c', { linkTarget: '../b' })], 'TAR_PATH'],
    [[entry('symlink', 'a')], 'TAR_ENTRY'],
    [[file('a', 'x', { uid: -1 })], 'TAR_ENTRY'],
    [[file('a', 'x', { xattrs: { 'bad=name': Buffer.from('x') } })], 'TAR_ENTRY'],
    [[entry('file', 'a', { size: 3 })], 'TAR_ENTRY'],
    [[entry('char', 'a', { devMajor: -1 })], 'TAR_ENTRY'],
  ];
  for (const [entries, code] of cases) {
    await assert.rejects(tarOf(entries), isCode(code), JSON.stringify(entries.map((item) => item.path)));
  }
  await assert.rejects(tarOf([file('a', 'x')], { sourceDateEpoch: 1.5 }), isCode('SOURCE_DATE_EPOCH'));
});

test('a file whose contents are longer or shorter than its size fails the stream', async () => {
  await assert.rejects(tarOf([file('a', 'x'), file('b', 'longer', { size: 3 })]), isCode('TAR_SIZE'));
  await assert.rejects(tarOf([file('b', 'short', { size: 30 })]), isCode('TAR_SIZE'));
});

test('a file that grows after it was described fails instead of producing a corrupt tar', async () => {
  const path = join(work, 'growing.log');
  writeFileSync(path, 'first line\n');
  const described = file('growing.log', '', { size: statSync(path).size, open: () => createReadStream(path) });
  appendFileSync(path, 'written while the layer was being built\n');
  await assert.rejects(tarOf([described]), isCode('TAR_SIZE'));
});

test('an unread tar stream stops opening files: contents are pulled, not buffered', async () => {
  const opened = new Set<string>();
  const entries = Array.from({ length: 5_000 }, (_, i) =>
    file(`f${String(i).padStart(5, '0')}`, '', {
      size: 1024,
      open: () => {
        opened.add(`f${i}`);
        return Readable.from([Buffer.alloc(1024, i % 256)]);
      },
    }),
  );
  const stream = layerTar(entries);
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.ok(opened.size < 500, `opened ${opened.size} of 5000 files with nobody reading`);
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  assert.equal(opened.size, 5_000);
  assert.equal(bytes % 512, 0);
  assert.ok(bytes >= 5_000 * (512 + 1024));
});

test('headers of entries without contents also wait for the consumer', async () => {
  let opened = false;
  const entries = [
    ...Array.from({ length: 20_000 }, (_, i) => entry('symlink', `link${String(i).padStart(5, '0')}`, { linkTarget: 'z' })),
    file('z', '', {
      size: 1,
      open: () => {
        opened = true;
        return Readable.from([Buffer.from('z')]);
      },
    }),
  ];
  const stream = layerTar(entries);
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
  // 20,000 headers are 10 MB; had they been pushed regardless, the file after them would be open by now.
  assert.equal(opened, false);
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  assert.ok(opened);
  assert.ok(bytes >= 20_001 * 512);
});

test('a consumer that stops reading tears the writer down and closes the file being read', async () => {
  const path = join(work, 'big.bin');
  writeFileSync(path, randomBytes(4 << 20));
  let source: Readable | undefined;
  const stream = layerTar([
    file('big.bin', '', {
      size: 4 << 20,
      open: () => {
        source = createReadStream(path, { highWaterMark: 16 * 1024 });
        return source;
      },
    }),
  ]);
  for await (const chunk of stream) {
    assert.ok((chunk as Buffer).length > 0);
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(source?.destroyed, 'the file stream was left open');
});

test('files read through openFile give the same bytes as through open, and must keep their size', async () => {
  const path = join(work, 'described.bin');
  const bytes = randomBytes(3 * 1024 * 1024 + 100);
  writeFileSync(path, bytes);
  const openFile = (): number => openSync(path, constants.O_RDONLY);
  const viaStream = await tarOf([file('a/b.bin', bytes), file('a/empty', '')]);
  const viaFile = await tarOf([file('a/b.bin', '', { size: bytes.length, open: undefined, openFile }), file('a/empty', '', { open: undefined, openFile: () => openSync(join(work, 'empty'), constants.O_RDONLY | constants.O_CREAT) })]);
  assert.ok(viaFile.equals(viaStream));
  await assert.rejects(tarOf([file('b.bin', '', { size: bytes.length + 1, open: undefined, openFile })]), isCode('TAR_SIZE'));
  await assert.rejects(tarOf([file('b.bin', '', { size: bytes.length - 1, open: undefined, openFile })]), isCode('TAR_SIZE'));
});

test('made in memory, a tar has the bytes the stream gives, and a file it can only stream is refused', async () => {
  const text = join(work, 'in-memory.txt');
  writeFileSync(text, 'in memory\n'.repeat(300));
  const fromDisk = (path: string): LayerEntry => ({ ...BASE, path, type: 'file', size: statSync(text).size, openFile: () => openSync(text, 'r') });
  const entries = [
    dir('etc'),
    fromDisk('etc/config'),
    fromDisk('etc/ümlaut-and-a-name-longer-than-one-hundred-bytes-'.padEnd(120, 'x')),
    entry('symlink', 'etc/link', { linkTarget: 'config', mode: 0o777 }),
    entry('whiteout', 'etc/gone'),
    entry('opaque', 'var'),
    { ...BASE, path: 'etc/empty', type: 'file', size: 0 } satisfies LayerEntry,
  ];
  for (const options of [{}, { sourceDateEpoch: 1_000 }]) {
    assert.ok(layerTarBytes(entries, options).equals(await tarOf(entries, options)));
  }
  assert.throws(() => layerTarBytes([file('streamed', 'only a stream')]), (error: unknown) => error instanceof TsbuildError && error.code === 'INTERNAL');
});
