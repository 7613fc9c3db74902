import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { RootDir, type Strategy } from '../../../layers/native/in-root.js';

const work = mkdtempSync(join(tmpdir(), 'tsbuild-in-root-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A root and, beside it, an "outside" directory holding canaries that nothing may touch. */
function setup(): { root: string; outside: string } {
  const base = mkdtempSync(join(work, 'case-'));
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(join(outside, 'b'), { recursive: true });
  writeFileSync(join(outside, 'b', 'file'), '');
  writeFileSync(join(outside, 'canary'), 'canary');
  mkdirSync(root);
  return { root, outside };
}

function hasCode(code: string): (error: unknown) => boolean {
  return (error) => (error as NodeJS.ErrnoException).code === code;
}

for (const strategy of ['openat2', 'walk'] as Strategy[]) {
  describe(`resolution with ${strategy}`, () => {
    const withRoot = <T>(root: string, action: (dir: RootDir) => T): T => {
      const dir = RootDir.open(root, strategy);
      try {
        return action(dir);
      } finally {
        dir.close();
      }
    };

    test('an absolute symlink resolves inside the root, or is refused', () => {
      const { root, outside } = setup();
      symlinkSync(outside, join(root, 'out'));
      mkdirSync(join(root, 'inside'));
      writeFileSync(join(root, 'inside', 'file'), 'in');
      symlinkSync('/inside', join(root, 'abs'));
      withRoot(root, (dir) => {
        assert.equal(dir.lstat('out/canary'), undefined);
        assert.equal(dir.remove('out/b/file', false), false);
        assert.equal(dir.removeTree('out/b'), false);
        assert.ok(dir.lstat('abs/file')?.isFile());
        assert.equal(dir.lstat('abs/file', 'refuse'), undefined);
        assert.deepEqual(dir.readdir('abs'), undefined, 'the final symlink is not followed');
        assert.deepEqual(dir.readdir('abs/.'), ['file']);
      });
      assert.equal(readFileSync(join(outside, 'canary'), 'utf8'), 'canary');
      assert.ok(existsSync(join(outside, 'b', 'file')));
    });

    test('.. never climbs above the root, written or in a relative symlink', () => {
      const { root, outside } = setup();
      symlinkSync('../../../../../../outside', join(root, 'dots'));
      symlinkSync('../../../../../..', join(root, 'up'));
      writeFileSync(join(root, 'canary'), 'mine');
      withRoot(root, (dir) => {
        assert.equal(dir.lstat('../outside/canary'), undefined);
        assert.equal(dir.lstat('dots/canary'), undefined);
        assert.ok(dir.lstat('../../canary')?.isFile(), '.. at the root stays at the root');
        assert.equal(dir.remove('../outside/canary', false), false);
        assert.equal(dir.remove('dots/b/file', false), false);
        const fd = dir.openFile('up', constants.O_RDONLY | constants.O_DIRECTORY, { followFinal: true });
        try {
          assert.equal(fstatSync(fd).ino, statSync(root).ino);
        } finally {
          closeSync(fd);
        }
      });
      assert.ok(existsSync(join(outside, 'canary')));
      assert.ok(existsSync(join(outside, 'b', 'file')));
    });

    test('a symlink loop is ELOOP', () => {
      const { root } = setup();
      symlinkSync('loop2', join(root, 'loop1'));
      symlinkSync('/loop1', join(root, 'loop2'));
      withRoot(root, (dir) => {
        assert.throws(() => dir.lstat('loop1/x'), hasCode('ELOOP'));
        assert.throws(() => dir.remove('loop2/x', false), hasCode('ELOOP'));
      });
    });

    test('a parent swapped for a symlink after the fact leads nowhere outside', () => {
      const { root, outside } = setup();
      mkdirSync(join(root, 'a', 'b'), { recursive: true });
      writeFileSync(join(root, 'a', 'b', 'file'), '');
      renameSync(join(root, 'a'), join(root, 'a2'));
      symlinkSync(outside, join(root, 'a'));
      withRoot(root, (dir) => {
        assert.equal(dir.remove('a/b/file', false, 'refuse'), false);
        assert.equal(dir.remove('a/b', true, 'refuse'), false);
        assert.equal(dir.readdir('a/b', 'refuse'), undefined);
        assert.equal(dir.setTimes('a/b', 0n, 0n, 'refuse'), false);
        assert.equal(dir.remove('a/b/file', false), false);
        assert.equal(dir.setTimes('a/b', 0n, 0n), false);
        assert.throws(() => dir.mkdir('a/new', 0o755, 'refuse'), hasCode('ENOENT'));
        assert.throws(() => dir.mkdir('a/new', 0o755), hasCode('ENOENT'));
        assert.equal(dir.mkdir('a2/new', 0o755, 'refuse'), true);
        assert.equal(dir.mkdir('a2/new', 0o755, 'refuse'), false);
      });
      assert.equal(existsSync(join(outside, 'new')), false);
      assert.ok(statSync(join(root, 'a2', 'new')).isDirectory());
      assert.ok(existsSync(join(outside, 'b', 'file')));
      assert.notEqual(statSync(join(outside, 'b')).mtimeMs, 0);
      assert.ok(existsSync(join(root, 'a2', 'b', 'file')));
    });

    test('the final component is the symlink itself, never its target', () => {
      const { root, outside } = setup();
      symlinkSync(join(outside, 'canary'), join(root, 'link'));
      symlinkSync(join(outside, 'b'), join(root, 'dirlink'));
      withRoot(root, (dir) => {
        assert.throws(() => dir.openFile('link', constants.O_RDONLY), hasCode('ELOOP'));
        assert.ok(dir.lstat('link')?.isSymbolicLink());
        assert.equal(dir.setTimes('link', 5_000_000_000n, 7_000_000_001n), true);
        assert.equal(lstatSync(join(root, 'link'), { bigint: true }).mtimeNs, 7_000_000_001n);
        assert.throws(() => dir.remove('dirlink', true), hasCode('ENOTDIR'));
        assert.equal(dir.remove('link', false), true);
        assert.equal(dir.removeTree('dirlink'), true);
      });
      assert.notEqual(statSync(join(outside, 'canary')).mtimeMs, 7000);
      assert.ok(existsSync(join(outside, 'b', 'file')));
      assert.equal(existsSync(join(root, 'dirlink')), false);
    });

    test('removes a tree holding symlinks out without touching their targets, and creates files inside', () => {
      const { root, outside } = setup();
      mkdirSync(join(root, 'tree', 'sub', 'deeper'), { recursive: true });
      writeFileSync(join(root, 'tree', 'sub', 'f'), '');
      symlinkSync(outside, join(root, 'tree', 'sub', 'deeper', 'out'));
      withRoot(root, (dir) => {
        assert.deepEqual(dir.readdir('tree/sub')?.sort(), ['deeper', 'f']);
        assert.equal(dir.removeTree('tree'), true);
        assert.equal(dir.removeTree('tree'), false);
        mkdirSync(join(root, 'made'));
        const fd = dir.openFile('made/new', constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, { mode: 0o640 });
        closeSync(fd);
      });
      assert.equal(existsSync(join(root, 'tree')), false);
      assert.deepEqual(readFileSync(join(outside, 'canary'), 'utf8'), 'canary');
      assert.ok(existsSync(join(outside, 'b', 'file')));
      assert.equal(statSync(join(root, 'made', 'new')).mode & 0o777, 0o640 & ~process.umask());
    });
  });
}

/**
 * In a child process whose seccomp filter makes openat2 fail with ENOSYS, as on kernels before 5.6:
 * the `auto` strategy must fall back to the walk and still keep every path inside the root.
 */
const withoutOpenat2 = `
import { libc } from ${JSON.stringify(new URL('../../../layers/native/libc.js', import.meta.url).href)};
import { RootDir } from ${JSON.stringify(new URL('../../../layers/native/in-root.js', import.meta.url).href)};
const { koffi, lib } = libc();
const SockFilter = koffi.struct('sock_filter', { code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
koffi.struct('sock_fprog', { len: 'uint16_t', filter: koffi.pointer(SockFilter) });
const prctl = lib.func('int prctl(int option, ...)');
// Load the syscall number; openat2 (437) returns ENOSYS (38), everything else is allowed.
const filter = [
  { code: 0x20, jt: 0, jf: 0, k: 0 },
  { code: 0x15, jt: 0, jf: 1, k: 437 },
  { code: 0x06, jt: 0, jf: 0, k: 0x00050000 | 38 },
  { code: 0x06, jt: 0, jf: 0, k: 0x7fff0000 },
];
if (prctl(38, 'unsigned long', 1, 'unsigned long', 0, 'unsigned long', 0, 'unsigned long', 0) !== 0) throw new Error('PR_SET_NO_NEW_PRIVS failed');
if (prctl(22, 'unsigned long', 2, 'sock_fprog *', { len: filter.length, filter }) !== 0) throw new Error('PR_SET_SECCOMP failed');
const [root] = process.argv.slice(1);
const result = {};
const strict = RootDir.open(root, 'openat2');
try { strict.lstat(''); } catch (error) { result.openat2 = error.code; }
strict.close();
const dir = RootDir.open(root);
result.inside = dir.lstat('abs/file')?.isFile() ?? false;
result.outside = dir.lstat('out/canary') === undefined;
result.removedThroughSwap = dir.remove('a/b/file', false, 'refuse');
result.removedOwn = dir.remove('a2/b/file', false, 'refuse');
dir.close();
console.log(JSON.stringify(result));
`;

test('without openat2 (ENOSYS), resolution falls back to the walk and stays inside the root', () => {
  const { root, outside } = setup();
  symlinkSync(outside, join(root, 'out'));
  mkdirSync(join(root, 'inside'));
  writeFileSync(join(root, 'inside', 'file'), '');
  symlinkSync('/inside', join(root, 'abs'));
  mkdirSync(join(root, 'a2', 'b'), { recursive: true });
  writeFileSync(join(root, 'a2', 'b', 'file'), '');
  symlinkSync(outside, join(root, 'a'));
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', withoutOpenat2, root]).toString();
  assert.deepEqual(JSON.parse(output), { openat2: 'ENOSYS', inside: true, outside: true, removedThroughSwap: false, removedOwn: true });
  assert.ok(existsSync(join(outside, 'b', 'file')));
  assert.equal(existsSync(join(root, 'a2', 'b', 'file')), false);
});
