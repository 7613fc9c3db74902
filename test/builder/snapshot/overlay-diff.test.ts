import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { LayerEntry } from '../../../layers/entry.js';
import { TsbuildError } from '../../../layers/errors.js';
import { diffOverlayUpper } from '../../../builder/snapshot/overlay-diff.js';
import { scanTree } from '../../../builder/snapshot/scan.js';
import { applyEntries, sh, summary, treeState } from '../../support/tree-state.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-overlay-diff-'));
after(() => rmSync(work, { recursive: true, force: true }));

const LOWER = `
mkdir -p etc/sub usr/bin var/lib/d data/dir
echo conf > etc/conf; echo x > etc/sub/a; echo y > etc/sub/b
echo tool > usr/bin/tool; chmod 755 usr/bin/tool
echo lib > var/lib/d/f
echo old > data/file; echo c > data/dir/c; echo shared > data/orig
`;

/**
 * An overlay mount of a lower tree, with a `cp -a` copy of the lower tree beside it. Each step runs
 * in the merged directory; its layer, made from the upper directory alone, is applied to the copy,
 * which must then equal the merged view.
 */
class OverlayHarness {
  private constructor(
    readonly dir: string,
    readonly upper: string,
    readonly merged: string,
    readonly copy: string,
  ) {}

  static async mount(options = ''): Promise<OverlayHarness> {
    const dir = await mkdtemp(join(work, 'mount-'));
    for (const name of ['lower', 'upper', 'work', 'merged']) await mkdir(join(dir, name));
    sh(LOWER, join(dir, 'lower'));
    sh('cp -a lower copy', dir);
    const o = join.bind(null, dir);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${o('lower')},upperdir=${o('upper')},workdir=${o('work')}${options}`, o('merged')]);
    return new OverlayHarness(dir, o('upper'), o('merged'), o('copy'));
  }

  unmount(): void {
    execFileSync('umount', [this.merged]);
  }

  /** Runs `script` in the merged tree and returns the step's entries, checked by applying them to the copy. */
  async step(script: string): Promise<LayerEntry[]> {
    const before = await scanTree(this.upper);
    sh(script, this.merged);
    const entries = await diffOverlayUpper(before, await scanTree(this.upper), this.upper);
    await applyEntries(entries, this.copy, this.dir);
    assert.deepEqual(await treeState(this.copy), await treeState(this.merged), `after ${script.trim()}`);
    return entries;
  }
}

/** Runs `body` on a fresh overlay mount, always unmounting it. */
async function withOverlay(body: (overlay: OverlayHarness) => Promise<void>, options = ''): Promise<void> {
  const overlay = await OverlayHarness.mount(options);
  try {
    await body(overlay);
  } finally {
    overlay.unmount();
  }
}

function kinds(entries: LayerEntry[]): string[] {
  return entries.map((entry) => `${entry.path}:${entry.type}`);
}

test('steps on an overlay mount give layers that rebuild the merged view, one after another', async () => {
  await withOverlay(async (overlay) => {
    let entries = await overlay.step('echo more >> etc/sub/a; echo new > newfile; mkdir -p newdir/x; echo n > newdir/x/f');
    assert.deepEqual(summary(entries), {
      etc: 'directory',
      'etc/sub': 'directory',
      'etc/sub/a': 'file',
      newdir: 'directory',
      'newdir/x': 'directory',
      'newdir/x/f': 'file',
      newfile: 'file',
    });

    // Lower paths deleted leave overlay whiteouts; paths an earlier step added simply vanish from upper.
    entries = await overlay.step('rm etc/sub/b; rm -rf var/lib/d; rm newfile; rm -rf newdir');
    assert.deepEqual(summary(entries), {
      etc: 'directory',
      'etc/sub': 'directory',
      'etc/sub/b': 'whiteout',
      newdir: 'whiteout',
      newfile: 'whiteout',
      var: 'directory',
      'var/lib': 'directory',
      'var/lib/d': 'whiteout',
    });

    entries = await overlay.step('rm -rf etc/sub; mkdir etc/sub; echo z > etc/sub/z');
    assert.deepEqual(kinds(entries), ['etc:directory', 'etc/sub:directory', 'etc/sub:opaque', 'etc/sub/z:file']);

    // A directory made where a whiteout was is opaque too.
    entries = await overlay.step('mkdir var/lib/d; echo again > var/lib/d/g');
    assert.deepEqual(kinds(entries), ['var:directory', 'var/lib:directory', 'var/lib/d:directory', 'var/lib/d:opaque', 'var/lib/d/g:file']);

    // Another child in a directory that is already opaque in upper is not a new opaque marker.
    entries = await overlay.step('echo more > etc/sub/more');
    assert.deepEqual(kinds(entries), ['etc:directory', 'etc/sub:directory', 'etc/sub/more:file']);
  });
});

test('metadata-only changes copy up with their attributes, and overlay bookkeeping stays out', async () => {
  await withOverlay(async (overlay) => {
    const entries = await overlay.step(
      'chmod 4755 usr/bin/tool; setfattr -n user.x -v 0x00ff etc/conf; chown 1234:5678 data/orig; ' +
        'setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 data/file',
    );
    const byPath = new Map(entries.map((entry) => [entry.path, entry]));
    assert.equal(byPath.get('usr/bin/tool')?.mode, 0o4755);
    assert.deepEqual(byPath.get('etc/conf')?.xattrs, { 'user.x': Buffer.from([0, 0xff]) });
    assert.deepEqual([byPath.get('data/orig')?.uid, byPath.get('data/orig')?.gid], [1234, 5678]);
    assert.deepEqual(byPath.get('data/file')?.xattrs, { 'security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') });
    for (const entry of entries) {
      assert.ok(!Object.keys(entry.xattrs ?? {}).some((name) => name.startsWith('trusted.overlay.')), entry.path);
    }
    // The upper directory itself does carry overlay attributes that had to be dropped.
    assert.match(execFileSync('getfattr', ['--absolute-names', '-d', '-m', 'trusted.overlay', '-R', overlay.upper]).toString(), /trusted\.overlay\./);
  });
});

test('type replacements, hardlinks, symlinks and special files on an overlay mount', async () => {
  await withOverlay(async (overlay) => {
    let entries = await overlay.step('rm -rf data/dir; echo f > data/dir; rm data/file; mkdir data/file; echo in > data/file/x');
    assert.deepEqual(kinds(entries), ['data:directory', 'data/dir:file', 'data/file:directory', 'data/file:opaque', 'data/file/x:file']);

    entries = await overlay.step('ln data/orig data/orig-link; echo h > h2; ln h2 h1');
    assert.deepEqual(summary(entries), {
      data: 'directory',
      'data/orig': 'file',
      'data/orig-link': 'hardlink:data/orig',
      h1: 'file',
      h2: 'hardlink:h1',
    });

    entries = await overlay.step('ln -s /etc/conf abs; ln -s ../etc/conf usr/rel; ln -s gone dangling; mkfifo usr/pipe; mknod usr/null c 1 3');
    assert.deepEqual(summary(entries), { abs: 'symlink', dangling: 'symlink', usr: 'directory', 'usr/null': 'char', 'usr/pipe': 'fifo', 'usr/rel': 'symlink' });

    // Whiteouts share one inode whose link count grows with each; earlier ones must not reappear.
    entries = await overlay.step('rm usr/bin/tool');
    assert.deepEqual(summary(entries), { usr: 'directory', 'usr/bin': 'directory', 'usr/bin/tool': 'whiteout' });
  });
});

test('upper entries that depend on the lower layer (redirect_dir) are refused', async () => {
  await withOverlay(async (overlay) => {
    const before = await scanTree(overlay.upper);
    sh('mv etc/sub etc/moved', overlay.merged);
    await assert.rejects(
      diffOverlayUpper(before, await scanTree(overlay.upper), overlay.upper),
      (error: unknown) => error instanceof TsbuildError && error.code === 'OVERLAY_UNSUPPORTED' && error.message.includes('etc/moved'),
    );
  }, ',redirect_dir=on');
});
