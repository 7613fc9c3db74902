import assert from 'node:assert/strict';
import { lstatSync, openSync, constants } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { contentChecksum } from '../../../builder/cache/content-checksum.js';
import { ContentDigests } from '../../../builder/context/content-digests.js';
import { copyEntries } from '../../../builder/exec/copy-entries.js';
import type { SourceTree } from '../../../builder/fs/source-tree.js';
import { sha256Digest } from '../../../layers/digest.js';

/** A digest is only remembered for a file that had settled this long before it was read. */
const SETTLE_MS = 2100;
const WHEN = 1_700_000_000;

async function fixture(): Promise<{ dir: string; context: string; cache: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'content-digests-'));
  const context = path.join(dir, 'context');
  await mkdir(path.join(context, 'lib'), { recursive: true });
  await writeFile(path.join(context, 'a.txt'), 'alpha');
  await writeFile(path.join(context, 'lib', 'b.txt'), 'bravo');
  // Whole seconds, so that the tests can put an mtime back exactly.
  for (const rel of ['a.txt', 'lib/b.txt']) await utimes(path.join(context, rel), WHEN, WHEN);
  return { dir, context, cache: path.join(dir, 'cache') };
}

function opener(file: string): () => number {
  return () => openSync(file, constants.O_RDONLY);
}

/** Digest of `rel`, and whether the file had to be read (1) or its digest was remembered (0). */
function digestOf(digests: ContentDigests, context: string, rel: string): { digest: string; read: number } {
  const file = path.join(context, rel);
  const before = digests.filesRead;
  const { digest } = digests.digest(file, opener(file));
  return { digest, read: digests.filesRead - before };
}

/** Waits until `rel` is old enough to be remembered, then reads it once and saves its digest in `cache`. */
async function rememberSettled(cache: string, context: string, rel: string): Promise<void> {
  await sleep(SETTLE_MS);
  const digests = await ContentDigests.load(cache, context);
  digestOf(digests, context, rel);
  await digests.save();
}

/** The checksum a COPY of the whole context gets, with remembered digests or without. */
async function checksumOf(context: string, digests?: ContentDigests): Promise<string> {
  const tree: SourceTree = { root: context, scope: 'context', label: 'context', isIgnored: () => false, ...(digests ? { digests } : {}) };
  const entries = await copyEntries([{ tree, match: { relPath: '', matchedPath: '', stats: lstatSync(context) } }], {
    destPath: 'app',
    destIsDirectory: true,
    parents: false,
    isExcluded: () => false,
    existing: async () => undefined,
    now: 0,
  });
  return (await contentChecksum(entries)).digest;
}

test('a settled, unchanged file is not read again by a later build', async () => {
  const { dir, context, cache } = await fixture();
  try {
    await sleep(SETTLE_MS);
    const first = await ContentDigests.load(cache, context);
    const read = digestOf(first, context, 'a.txt');
    assert.equal(read.digest, sha256Digest('alpha'));
    assert.equal(read.read, 1);
    await first.save();
    assert.equal((await readdir(path.join(cache, 'context-digests'))).length, 1);

    const second = await ContentDigests.load(cache, context);
    const again = digestOf(second, context, 'a.txt');
    assert.deepEqual(again, { digest: sha256Digest('alpha'), read: 0 });
    // Another context directory has digests of its own.
    const other = await ContentDigests.load(cache, path.join(dir, 'elsewhere'));
    assert.equal(digestOf(other, context, 'a.txt').read, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an edit that keeps the size and puts the mtime back is still read again', async () => {
  const { dir, context, cache } = await fixture();
  try {
    await rememberSettled(cache, context, 'a.txt');
    const file = path.join(context, 'a.txt');
    await writeFile(file, 'ALPHA');
    await utimes(file, WHEN, WHEN);
    assert.equal((await stat(file)).mtimeMs, WHEN * 1000);

    const second = await ContentDigests.load(cache, context);
    assert.deepEqual(digestOf(second, context, 'a.txt'), { digest: sha256Digest('ALPHA'), read: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a file changed just before it was read is not remembered', async () => {
  const { dir, context, cache } = await fixture();
  try {
    const first = await ContentDigests.load(cache, context);
    assert.equal(digestOf(first, context, 'a.txt').read, 1);
    await first.save();
    const second = await ContentDigests.load(cache, context);
    assert.equal(digestOf(second, context, 'a.txt').read, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a damaged digest file is an empty cache', async () => {
  const { dir, context, cache } = await fixture();
  try {
    await rememberSettled(cache, context, 'a.txt');
    const [name] = await readdir(path.join(cache, 'context-digests'));
    const saved = path.join(cache, 'context-digests', name!);
    const [header, line] = (await readFile(saved, 'utf8')).split('\n');
    // The right header, then a line cut short and one whose path is not JSON.
    await writeFile(saved, `${header}\n${line!.slice(0, 70)}\n${line!.replace(/"[^"]*"$/, 'a.txt')}\n`);
    const second = await ContentDigests.load(cache, context);
    assert.deepEqual(digestOf(second, context, 'a.txt'), { digest: sha256Digest('alpha'), read: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('remembered digests give the same COPY checksum, and a change of content, mode or name changes it', async () => {
  const { dir, context, cache } = await fixture();
  try {
    await sleep(SETTLE_MS);
    const fresh = await checksumOf(context);
    const first = await ContentDigests.load(cache, context);
    assert.equal(await checksumOf(context, first), fresh);
    await first.save();
    const remembered = async (): Promise<string> => checksumOf(context, await ContentDigests.load(cache, context));
    assert.equal(await remembered(), fresh);

    const file = path.join(context, 'lib', 'b.txt');
    await writeFile(file, 'BRAVO');
    await utimes(file, WHEN, WHEN);
    const edited = await remembered();
    assert.notEqual(edited, fresh);
    assert.equal(edited, await checksumOf(context));

    await chmod(file, 0o600);
    const chmodded = await remembered();
    assert.notEqual(chmodded, edited);
    assert.equal(chmodded, await checksumOf(context));

    await rename(file, path.join(context, 'lib', 'c.txt'));
    const renamed = await remembered();
    assert.notEqual(renamed, chmodded);
    assert.equal(renamed, await checksumOf(context));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
