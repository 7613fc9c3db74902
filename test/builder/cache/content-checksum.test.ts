import assert from 'node:assert/strict';
import { createReadStream, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { contentChecksum } from '../../../builder/cache/content-checksum.js';
import type { LayerEntry } from '../../../layers/entry.js';
import { TsbuildError } from '../../../layers/errors.js';
import { readXattrs } from '../../../layers/xattrs.js';
import { sh } from '../../support/tree-state.js';
import { copiedEntries } from './copy-fixture.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-content-checksum-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A fresh tree under the test's temp dir, made by a shell script. */
function tree(script: string): string {
  const root = mkdtempSync(join(work, 'tree-'));
  sh(script, root);
  return root;
}

/** Entries of `COPY --from=<stage> / /app/` over `root`: real owners, as a stage's files have. */
const stageEntries = (root: string): Promise<LayerEntry[]> => copiedEntries(root, { scope: 'rootfs' });

const setup = 'mkdir -p d/e; printf hello > d/e/f; printf world > d/g; ln -s e/f d/link; chown 1000:1000 d/g; chmod 640 d/g';

test('the same files give the same checksum wherever they are, whatever their mtimes and entry order', async () => {
  const a = tree(setup);
  const b = tree(setup);
  sh('touch -d "1999-12-31 23:59:59" d/e/f d/g d/e d; touch -h -d "1999-01-01" d/link', b);
  const sumA = await contentChecksum(await stageEntries(a));
  const entriesB = await stageEntries(b);
  const sumB = await contentChecksum(entriesB.reverse());
  assert.equal(sumB.digest, sumA.digest);
  assert.deepEqual([...sumB.files], [...sumA.files]);
  assert.deepEqual([...sumA.files.keys()], ['app', 'app/d', 'app/d/e', 'app/d/e/f', 'app/d/g', 'app/d/link'], 'every entry, in path order');
  assert.match(sumA.digest, /^sha256:[0-9a-f]{64}$/);
});

test('content, mode, owner, symlink target, xattrs, path and type each change the checksum, and only that entry', async () => {
  const changes: [string, string, string][] = [
    ['content of the same size and mtime', 'printf jello > d/e/f; touch -d "2000-01-01" d/e/f', 'app/d/e/f'],
    ['mode', 'chmod 600 d/e/f', 'app/d/e/f'],
    ['owner', 'chown 1001 d/g', 'app/d/g'],
    ['group', 'chgrp 1001 d/g', 'app/d/g'],
    ['symlink target', 'ln -sfn e/../e/f d/link', 'app/d/link'],
    ['directory mode', 'chmod 700 d/e', 'app/d/e'],
    ['type', 'rm d/link; printf e/f > d/link', 'app/d/link'],
  ];
  const pristine = tree(`${setup}; touch -d "2000-01-01" d/e/f`);
  const before = await contentChecksum(await stageEntries(pristine));
  const seen = new Set([before.digest]);
  for (const [what, script, path] of changes) {
    const root = tree(`${setup}; touch -d "2000-01-01" d/e/f; ${script}`);
    const after = await contentChecksum(await stageEntries(root));
    assert.ok(!seen.has(after.digest), what);
    seen.add(after.digest);
    const differing = [...after.files].filter(([p, digest]) => before.files.get(p) !== digest).map(([p]) => p);
    assert.deepEqual(differing, [path], what);
  }

  const renamed = await contentChecksum(await stageEntries(tree(`${setup}; mv d/g d/h`)));
  assert.ok(!seen.has(renamed.digest), 'path');
  assert.deepEqual([...renamed.files.keys()].filter((p) => !before.files.has(p)), ['app/d/h']);
  assert.deepEqual([...before.files.keys()].filter((p) => !renamed.files.has(p)), ['app/d/g']);
  assert.notEqual(renamed.files.get('app/d/h'), before.files.get('app/d/g'), 'the path is part of an entry\'s own digest');
});

test('extended attributes, names and values, change the checksum', async () => {
  const root = tree('printf x > f');
  const withXattrs = async (): Promise<string> => {
    const entries = await stageEntries(root);
    const xattrs = await readXattrs(entries.map((e) => join(root, e.path.slice('app/'.length))));
    for (const entry of entries) {
      const found = xattrs.get(join(root, entry.path.slice('app/'.length)));
      if (found) entry.xattrs = found;
    }
    return (await contentChecksum(entries)).digest;
  };
  const none = await withXattrs();
  assert.equal(await withXattrs(), none);
  sh('setfattr -n user.note -v one f', root);
  const one = await withXattrs();
  sh('setfattr -n user.note -v two f', root);
  const two = await withXattrs();
  sh('setfattr -x user.note f; setfattr -n user.other -v two f', root);
  const renamed = await withXattrs();
  assert.equal(new Set([none, one, two, renamed]).size, 4);
});

test('hard links and device numbers are covered', async () => {
  const base: LayerEntry = { path: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 0, devMajor: 1, devMinor: 3 };
  const sums = await Promise.all(
    [base, { ...base, devMinor: 5 }, { ...base, devMajor: 4 }, { ...base, type: 'block' as const }].map(async (e) => (await contentChecksum([e])).digest),
  );
  assert.equal(new Set(sums).size, 4);
  const link = (target: string): LayerEntry => ({ path: 'b', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 0, linkTarget: target });
  assert.notEqual((await contentChecksum([link('a')])).digest, (await contentChecksum([link('c')])).digest);
});

test('nothing is remembered between calls: a rewritten file is read again', async () => {
  const root = tree('printf one > f');
  const entries = await stageEntries(root);
  const first = await contentChecksum(entries);
  const stat = new Date('2000-01-01T00:00:00Z');
  writeFileSync(join(root, 'f'), 'two');
  utimesSync(join(root, 'f'), stat, stat);
  const second = await contentChecksum(entries);
  assert.notEqual(second.digest, first.digest);
  assert.equal((await contentChecksum(entries)).digest, second.digest);
});

test('a large file is streamed in chunks, and its last byte counts', async () => {
  const root = tree('truncate -s 64M big');
  const file = join(root, 'big');
  const chunks: number[] = [];
  const entry: LayerEntry = {
    path: 'big',
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    size: 64 * 1024 * 1024,
    open: () => createReadStream(file).on('data', (chunk) => chunks.push(chunk.length)),
  };
  const zeros = await contentChecksum([entry]);
  assert.equal(chunks.reduce((a, b) => a + b, 0), entry.size);
  assert.ok(chunks.length > 100, `read in ${chunks.length} chunks`);
  assert.ok(Math.max(...chunks) <= 1024 * 1024, 'no chunk holds a large part of the file');
  sh('printf x | dd of=big bs=1 seek=67108863 conv=notrunc status=none', root);
  assert.notEqual((await contentChecksum([entry])).digest, zeros.digest);
});

test('a file whose length is not its entry\'s size, duplicate paths and a missing file are errors', async () => {
  const root = tree('printf 123456 > f');
  const entry: LayerEntry = { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 5, open: () => createReadStream(join(root, 'f')) };
  await assert.rejects(contentChecksum([entry]), (err: unknown) => err instanceof TsbuildError && err.code === 'SOURCE_CHANGED' && /f changed while it was read/.test(err.message));
  await assert.rejects(contentChecksum([{ ...entry, size: 6 }, { ...entry, size: 6 }]), /two layer entries for f/);
  const gone: LayerEntry = { ...entry, open: () => createReadStream(join(root, 'gone')) };
  await assert.rejects(contentChecksum([gone]), (err: unknown) => err instanceof TsbuildError && err.code === 'SOURCE_READ' && /ENOENT/.test(err.message));
  const empty = await contentChecksum([]);
  assert.equal(empty.files.size, 0);
  assert.notEqual(empty.digest, (await contentChecksum([{ ...entry, size: 6 }])).digest);
});
