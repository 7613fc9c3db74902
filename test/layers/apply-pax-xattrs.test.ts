import assert from 'node:assert/strict';
import { mkdtemp, readFile, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { extract as tarExtract } from 'tar-stream';
import { applyLayer } from '../../layers/apply-layer.js';
import { PaxXattrScanner, type Xattrs } from '../../layers/apply-pax-xattrs.js';

// Tar blocks are written by hand here: the tar writer we depend on can only put text in PAX values.

function header(name: string, typeflag: string, size: number, linkname = ''): Buffer {
  const block = Buffer.alloc(512);
  block.write(name.slice(0, 100), 0);
  block.write('0000644\0', 100);
  block.write('0000000\0', 108);
  block.write('0000000\0', 116);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write('13333333333\0', 136);
  block.write('        ', 148);
  block.write(typeflag, 156);
  block.write(linkname, 157);
  block.write('ustar\0', 257);
  block.write('00', 263);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

function padded(data: Buffer): Buffer[] {
  return [data, Buffer.alloc((512 - (data.length % 512)) % 512)];
}

/** One `<length> <key>=<value>\n` record; the length counts its own digits. */
function record(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let digits = 1;
  while (String(body.length + digits).length !== digits) digits += 1;
  return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
}

function pax(records: Buffer[], global = false): Buffer[] {
  const data = Buffer.concat(records);
  return [header('PaxHeader', global ? 'g' : 'x', data.length), ...padded(data)];
}

function file(name: string, content: Buffer, sizeField = content.length): Buffer[] {
  return [header(name, '0', sizeField), ...padded(content)];
}

const CAPABILITY = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0xff, 0xfe, 0xc3, 0x28, 0, 0, 0, 0]);
const LONG_NAME = `d/${'x'.repeat(150)}`;

/** Entries in the order a tar reader emits them, with the xattrs each should get. */
const expected: { name: string; xattrs?: Xattrs }[] = [
  { name: 'd/' },
  {
    name: 'd/ping',
    xattrs: { 'security.capability': CAPABILITY, 'user.text': Buffer.from('héllo'), 'user.global': Buffer.from('G') },
  },
  { name: LONG_NAME },
  {
    name: 'd/sized',
    xattrs: {
      'user.enc=name': Buffer.from([0, 1, 2, 255]),
      'user.both': Buffer.from('schily'),
      'user.global': Buffer.from('G'),
    },
  },
  { name: 'd/link', xattrs: { 'user.onlink': Buffer.from('l'), 'user.global': Buffer.from('G') } },
  { name: 'empty', xattrs: { 'user.e': Buffer.from(''), 'user.global': Buffer.from('G') } },
  { name: 'plain' },
];

const archive = Buffer.concat([
  // A global header reaches only entries that have a PAX header of their own, as in the reader.
  ...pax([record('SCHILY.xattr.user.global', 'G')], true),
  header('d/', '5', 0),
  ...pax([record('SCHILY.xattr.security.capability', CAPABILITY), record('SCHILY.xattr.user.text', 'héllo')]),
  ...file('d/ping', Buffer.alloc(600, 1)),
  header('././@LongLink', 'L', LONG_NAME.length + 1),
  ...padded(Buffer.from(`${LONG_NAME}\0`)),
  ...file(LONG_NAME, Buffer.alloc(1000, 2)),
  // The PAX size overrides the header's size field (0 here).
  ...pax([
    record('size', '700'),
    record('LIBARCHIVE.xattr.user.enc%3Dname', Buffer.from([0, 1, 2, 255]).toString('base64')),
    record('LIBARCHIVE.xattr.user.both', Buffer.from('libarchive').toString('base64')),
    record('SCHILY.xattr.user.both', 'schily'),
  ]),
  ...file('d/sized', Buffer.alloc(700, 3), 0),
  ...pax([record('SCHILY.xattr.user.onlink', 'l')]),
  header('d/link', '2', 0, 'ping'),
  ...pax([record('SCHILY.xattr.user.e', ''), record('comment', 'not an xattr')]),
  ...file('empty', Buffer.alloc(0)),
  ...file('plain', Buffer.from('p')),
  Buffer.alloc(1024),
]);

function scanInChunks(sizes: number[]): PaxXattrScanner {
  const scanner = new PaxXattrScanner();
  let offset = 0;
  for (let i = 0; offset < archive.length; i++) {
    const size = sizes[i % sizes.length];
    scanner.scan(archive.subarray(offset, offset + size));
    offset += size;
  }
  return scanner;
}

describe('PaxXattrScanner', () => {
  const splits: [string, number[]][] = [
    ['in one chunk', [archive.length]],
    ['a byte at a time', [1]],
    ['in uneven chunks', [7, 511, 513, 1000, 3, 2048]],
  ];
  for (const [label, sizes] of splits) {
    test(`finds each entry's raw xattrs ${label}`, () => {
      const scanner = scanInChunks(sizes);
      expected.forEach((entry, index) => assert.deepEqual(scanner.take(index), entry.xattrs, entry.name));
      assert.equal(scanner.take(expected.length), undefined);
    });
  }

  test('take forgets what it returned', () => {
    const scanner = scanInChunks([archive.length]);
    assert.ok(scanner.take(1));
    assert.equal(scanner.take(1), undefined);
  });

  test('numbers entries exactly as the tar reader emits them', async () => {
    const reader = tarExtract();
    reader.end(archive);
    const names: string[] = [];
    for await (const entry of reader) {
      names.push(entry.header.name);
      entry.resume();
    }
    assert.deepEqual(names, expected.map((entry) => entry.name));
  });

  test('a directory\'s size field is not followed by data, as for the tar reader', async () => {
    const odd = Buffer.concat([
      header('weird/', '5', 512),
      ...pax([record('SCHILY.xattr.user.after', 'a')]),
      ...file('after', Buffer.from('x')),
      Buffer.alloc(1024),
    ]);
    const scanner = new PaxXattrScanner();
    scanner.scan(odd);
    assert.equal(scanner.take(0), undefined);
    assert.deepEqual(scanner.take(1), { 'user.after': Buffer.from('a') });

    const reader = tarExtract();
    reader.end(odd);
    const names: string[] = [];
    for await (const entry of reader) {
      names.push(entry.header.name);
      entry.resume();
    }
    assert.deepEqual(names, ['weird/', 'after']);
  });

  test('applyLayer reports the binary values byte for byte', async () => {
    const root = await realpath(await mkdtemp(path.join(tmpdir(), 'tsbuild-pax-')));
    try {
      const stats = await applyLayer(root, Readable.from([archive]));
      assert.deepEqual(stats.xattrs.get('d/ping'), expected[1].xattrs);
      assert.deepEqual(stats.xattrs.get('d/sized'), expected[3].xattrs);
      assert.deepEqual(stats.xattrs.get('d/link'), expected[4].xattrs);
      assert.equal(stats.xattrs.has('plain'), false);
      assert.equal((await readFile(path.join(root, 'd/sized'))).length, 700);
      assert.equal((await readFile(path.join(root, LONG_NAME))).length, 1000);
      assert.equal(await readlink(path.join(root, 'd/link')), 'ping');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
