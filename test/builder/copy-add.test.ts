/**
 * End-to-end COPY and ADD: each case writes a Dockerfile and a build context, builds an OCI layout
 * with `build()`, unpacks it with umoci and checks the resulting tree against Docker/BuildKit
 * semantics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, chmod, link, mkdir, mkdtemp, readFile, readlink, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { buildForTest, type TestBuildOptions } from '../support/build-for-test.js';
import { SourceError, TsbuildError } from '../../layers/errors.js';
import { unpackWithUmoci, validateLayout } from '../support/validate-layout.js';
import { rawTar } from '../security/raw-tar.js';

const execFileAsync = promisify(execFile);

/** A context file: text content, or content with an explicit mode. */
type FileSpec = string | { content: string; mode: number };

interface Built {
  /** The unpacked root filesystem. */
  readonly rootfs: string;
  /** The OCI layout directory. */
  readonly dest: string;
  /** The build context directory. */
  readonly context: string;
}

interface Case {
  readonly dockerfile: string;
  readonly files?: Record<string, FileSpec>;
  /** Extra context set-up: symlinks, hardlinks, archives. */
  readonly setup?: (context: string) => Promise<void>;
  readonly request?: Partial<TestBuildOptions>;
}

/** Writes `files` (and parent directories) under `dir`. */
async function writeFiles(dir: string, files: Record<string, FileSpec>): Promise<void> {
  for (const [name, spec] of Object.entries(files)) {
    const file = join(dir, name);
    await mkdir(dirname(file), { recursive: true });
    const { content, mode } = typeof spec === 'string' ? { content: spec, mode: 0o644 } : spec;
    await writeFile(file, content);
    await chmod(file, mode);
  }
}

/** Builds `c` into a fresh OCI layout, unpacks it and runs `check`; everything is removed afterwards. */
async function withImage(c: Case, check: (built: Built) => Promise<void>): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-copy-add-'));
  try {
    const context = join(work, 'context');
    const dest = join(work, 'layout');
    await prepareContext(context, c);
    await buildForTest({ context, outputs: [{ type: 'oci', dest, tar: false }], tags: ['t:1'], ...c.request });
    const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
    try {
      await check({ rootfs, dest, context });
    } finally {
      await cleanup();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Asserts that building `c` fails with a SourceError at `line` whose message matches `message`. */
async function assertBuildFails(c: Case, line: number, message: RegExp): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-copy-add-'));
  try {
    const context = join(work, 'context');
    await prepareContext(context, c);
    await assert.rejects(
      buildForTest({ context, outputs: [{ type: 'oci', dest: join(work, 'layout'), tar: false }], tags: ['t:1'], ...c.request }),
      (err: unknown) => {
        assert.ok(err instanceof TsbuildError, `expected a TsbuildError, got ${String(err)}`);
        assert.ok(err instanceof SourceError, `expected a SourceError, got ${err.name}: ${err.message}`);
        assert.equal(err.line, line, `wrong line in: ${err.message}`);
        assert.match(err.message, new RegExp(`:${line}: `));
        assert.match(err.message, message);
        assert.ok(!err.message.includes('\n'), `message is one line: ${err.message}`);
        return true;
      },
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function prepareContext(context: string, c: Case): Promise<void> {
  await mkdir(context, { recursive: true });
  await writeFiles(context, c.files ?? {});
  await writeFile(join(context, 'Dockerfile'), c.dockerfile);
  await c.setup?.(context);
}

/** Lines of a Dockerfile, joined. */
const df = (...lines: string[]): string => `${lines.join('\n')}\n`;

async function text(rootfs: string, p: string): Promise<string> {
  return readFile(join(rootfs, p), 'utf8');
}

/** Asserts a path's type, permission bits (with setuid/setgid/sticky) and ownership. */
async function assertNode(
  rootfs: string,
  p: string,
  want: { type: 'file' | 'dir' | 'symlink'; mode?: number; uid?: number; gid?: number; content?: string; target?: string },
): Promise<void> {
  const st = await lstat(join(rootfs, p)).catch(() => undefined);
  assert.ok(st, `${p} should exist`);
  const type = st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  assert.equal(type, want.type, `${p} type`);
  if (want.mode !== undefined) assert.equal((st.mode & 0o7777).toString(8), want.mode.toString(8), `${p} mode`);
  if (want.uid !== undefined) assert.equal(st.uid, want.uid, `${p} uid`);
  if (want.gid !== undefined) assert.equal(st.gid, want.gid, `${p} gid`);
  if (want.content !== undefined) assert.equal(await text(rootfs, p), want.content, `${p} content`);
  if (want.target !== undefined) assert.equal(await readlink(join(rootfs, p)), want.target, `${p} link target`);
}

async function assertAbsent(rootfs: string, p: string): Promise<void> {
  const st = await lstat(join(rootfs, p)).catch(() => undefined);
  assert.equal(st, undefined, `${p} should not exist`);
}

/** Sorted names in a directory of the image. */
async function names(rootfs: string, p: string): Promise<string[]> {
  return (await readdir(join(rootfs, p))).sort();
}

const passwd = 'root:x:0:0:root:/root:/bin/sh\nalice:x:1001:1002:Alice:/home/alice:/bin/sh\nbob:x:1003:1004::/home/bob:/bin/sh\n';
const group = 'root:x:0:\nstaff:x:50:\nalice:x:1002:\nbobs:x:1004:\n';
/** A first stage holding /etc/passwd and /etc/group, for `--chown` by name. */
const usersStage = ['FROM scratch AS users', 'COPY passwd group /etc/'];

describe('COPY sources', () => {
  it('expands wildcards in file names and directory components', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY *.txt /txt/', 'COPY dir/?.c /c/', 'COPY [ab]* /ab/', 'COPY d*/sub/*.h /h/'),
        files: {
          'a.txt': 'A',
          'b.txt': 'B',
          'c.md': 'C',
          'dir/x.c': 'x',
          'dir/y.c': 'y',
          'dir/xy.c': 'xy',
          'dir/z.h': 'z',
          'dir/sub/one.h': '1',
          'dz/sub/two.h': '2',
          'dz/sub/two.c': '2c',
        },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'txt'), ['a.txt', 'b.txt']);
        assert.equal(await text(rootfs, 'txt/a.txt'), 'A');
        assert.deepEqual(await names(rootfs, 'c'), ['x.c', 'y.c']);
        assert.deepEqual(await names(rootfs, 'ab'), ['a.txt', 'b.txt']);
        assert.deepEqual(await names(rootfs, 'h'), ['one.h', 'two.h']);
      },
    );
  });

  it('copies the contents of a directory a wildcard matches', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'COPY src* /out/'), files: { 'src1/a': 'a', 'src2/sub/b': 'b', 'srcfile': 'f' } },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'out'), ['a', 'srcfile', 'sub']);
        assert.equal(await text(rootfs, 'out/sub/b'), 'b');
      },
    );
  });

  it('matches names as Go\'s filepath.Match does: dashes, classes, ranges, negation, quoted wildcards', async () => {
    await withImage(
      {
        dockerfile: df(
          'FROM scratch',
          'COPY app-* /dash/',
          'COPY [a-b]?? /range/',
          'COPY [^a-c]?? /negated/',
          'COPY n\\?pe /unquoted/',
          'COPY "n\\?p*" /quoted/',
        ),
        files: { 'app-1': '1', 'app-2': '2', 'abc': 'abc', 'bcd': 'bcd', 'cde': 'cde', 'xyz': 'xyz', 'n?pe': 'q', 'nope': 'n' },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'dash'), ['app-1', 'app-2']);
        assert.deepEqual(await names(rootfs, 'range'), ['abc', 'bcd']);
        assert.deepEqual(await names(rootfs, 'negated'), ['xyz']);
        // Unquoted, the Dockerfile's own escape removal leaves `n?pe`, a wildcard; quoted, `\?` reaches
        // the pattern and matches only a literal `?`.
        assert.deepEqual(await names(rootfs, 'unquoted'), ['n?pe', 'nope']);
        assert.deepEqual(await names(rootfs, 'quoted'), ['n?pe']);
      },
    );
  });

  it('copies nothing, without failing, for wildcards and malformed patterns that match nothing', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY *.nothing a.txt /some/', 'COPY *.nothing /none/', 'COPY [a /bad/', 'COPY l*/f /links/'),
        files: { 'a.txt': 'A', '[a': 'literal', 'dir/f': 'f' },
        setup: (ctx) => symlink('dir', join(ctx, 'link')),
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'some'), ['a.txt']);
        await assertAbsent(rootfs, 'none');
        await assertAbsent(rootfs, 'bad');
        // Below the first wildcard, symlinks to directories are not followed.
        await assertAbsent(rootfs, 'links');
      },
    );
  });

  it('fails when the directory before a wildcard does not exist', async () => {
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY nodir/* /x/'), files: { 'a.txt': 'A' } }, 2, /nodir.*not found/);
  });

  it('fails on a quoted escape without wildcards, which names a file with a backslash', async () => {
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY "n\\?pe" /x/'), files: { 'n?pe': 'q' } }, 2, /not found/);
  });

  it('fails when a source does not exist', async () => {
    await assertBuildFails({ dockerfile: df('FROM scratch', '', 'COPY missing.txt /x'), files: {} }, 3, /missing\.txt.*not found/);
  });

  it('copies a directory\'s contents, not the directory, with or without trailing slashes', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY dir /plain', 'COPY dir/ /slashed/', 'COPY dir/. /dotted'),
        files: { 'dir/f': 'f', 'dir/sub/g': 'g' },
        setup: async (ctx) => {
          await chmod(join(ctx, 'dir'), 0o750);
          await chmod(join(ctx, 'dir/sub'), 0o700);
        },
      },
      async ({ rootfs }) => {
        for (const d of ['plain', 'slashed', 'dotted']) {
          assert.deepEqual(await names(rootfs, d), ['f', 'sub'], d);
          // As in BuildKit, the destination directory the copy creates is 0755, whatever the source's mode.
          await assertNode(rootfs, d, { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
          await assertNode(rootfs, `${d}/sub`, { type: 'dir', mode: 0o700 });
          await assertNode(rootfs, `${d}/sub/g`, { type: 'file', mode: 0o644, content: 'g' });
        }
        await assertAbsent(rootfs, 'plain/dir');
      },
    );
  });

  it('copies the context\'s contents for a source that expands to nothing, as BuildKit does', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'ARG EMPTY', 'COPY $EMPTY /ctx/', 'COPY ${EMPTY} a /one/'), files: { 'a': 'a', 'd/b': 'b', '.dockerignore': 'd/b\n' } },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'ctx'), ['.dockerignore', 'Dockerfile', 'a', 'd']);
        assert.deepEqual(await names(rootfs, 'ctx/d'), []);
        assert.deepEqual(await names(rootfs, 'one'), ['.dockerignore', 'Dockerfile', 'a', 'd']);
      },
    );
  });

  it('copies the whole context with "."', async () => {
    await withImage({ dockerfile: df('FROM scratch', 'COPY . /ctx/'), files: { 'a': 'a', 'd/b': 'b' } }, async ({ rootfs }) => {
      assert.deepEqual(await names(rootfs, 'ctx'), ['Dockerfile', 'a', 'd']);
      assert.equal(await text(rootfs, 'ctx/d/b'), 'b');
    });
  });
});

describe('COPY destinations', () => {
  it('treats a destination ending in / as a directory and a plain one as the file name', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'COPY a.txt /d/', 'COPY a.txt /renamed', 'COPY a.txt b.txt /multi/'), files: { 'a.txt': 'A', 'b.txt': 'B' } },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'd', { type: 'dir', mode: 0o755 });
        await assertNode(rootfs, 'd/a.txt', { type: 'file', content: 'A' });
        await assertNode(rootfs, 'renamed', { type: 'file', content: 'A', mode: 0o644 });
        assert.deepEqual(await names(rootfs, 'multi'), ['a.txt', 'b.txt']);
      },
    );
  });

  it('treats a wildcard matching several files as several sources', async () => {
    await withImage({ dockerfile: df('FROM scratch', 'COPY *.txt /many/'), files: { 'a.txt': 'A', 'b.txt': 'B' } }, async ({ rootfs }) => {
      assert.deepEqual(await names(rootfs, 'many'), ['a.txt', 'b.txt']);
    });
  });

  it('copies the files a wildcard matches onto a destination without /, the last one winning, as BuildKit does', async () => {
    await withImage({ dockerfile: df('FROM scratch', 'COPY *.txt /one'), files: { 'a.txt': 'A', 'b.txt': 'B' } }, async ({ rootfs }) => {
      await assertNode(rootfs, 'one', { type: 'file', content: 'B' });
    });
  });

  it('copies several sources onto a destination without /, the last one winning, and fails where a directory or file is in the way', async () => {
    await withImage({ dockerfile: df('FROM scratch', 'COPY a.txt b.txt /multi'), files: { 'a.txt': 'A', 'b.txt': 'B' } }, async ({ rootfs }) => {
      await assertNode(rootfs, 'multi', { type: 'file', content: 'B' });
    });
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY a.txt /p', 'COPY dir /p/'), files: { 'a.txt': 'A', 'dir/x': 'x' } }, 3, /cannot copy into \/p: not a directory/);
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY a.txt /p', 'COPY a.txt /p/'), files: { 'a.txt': 'A' } }, 3, /not a directory/);
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY dir /d/', 'COPY a.txt /d/'), files: { 'a.txt': 'A', 'dir/a.txt/x': 'x' } }, 3, /cannot replace directory \/d\/a\.txt with a file/);
  });

  it('puts a file copied onto an existing directory inside it', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'COPY a.txt /existing/', 'COPY b.txt /existing', 'COPY c.txt /existing/nested'), files: { 'a.txt': 'A', 'b.txt': 'B', 'c.txt': 'C' } },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'existing'), ['a.txt', 'b.txt', 'nested']);
        await assertNode(rootfs, 'existing/b.txt', { type: 'file', content: 'B' });
        await assertNode(rootfs, 'existing/nested', { type: 'file', content: 'C' });
      },
    );
  });

  it('resolves a relative destination against WORKDIR', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'WORKDIR /app', 'COPY a.txt .', 'COPY a.txt rel/', 'COPY a.txt renamed', 'WORKDIR sub', 'COPY a.txt ../up.txt', 'COPY a.txt ./'),
        files: { 'a.txt': 'A' },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'app/a.txt', { type: 'file', content: 'A' });
        await assertNode(rootfs, 'app/rel/a.txt', { type: 'file', content: 'A' });
        await assertNode(rootfs, 'app/renamed', { type: 'file', content: 'A' });
        await assertNode(rootfs, 'app/up.txt', { type: 'file', content: 'A' });
        await assertNode(rootfs, 'app/sub/a.txt', { type: 'file', content: 'A' });
      },
    );
  });

  it('creates missing parent directories with mode 0755', async () => {
    await withImage({ dockerfile: df('FROM scratch', 'COPY a.txt /x/y/z/file'), files: { 'a.txt': { content: 'A', mode: 0o600 } } }, async ({ rootfs }) => {
      for (const d of ['x', 'x/y', 'x/y/z']) await assertNode(rootfs, d, { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
      await assertNode(rootfs, 'x/y/z/file', { type: 'file', mode: 0o600, content: 'A' });
    });
  });

  it('writes through a symlink in the destination path of the image', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch AS base', 'COPY tree /', 'FROM base', 'COPY a.txt /link/'),
        files: { 'a.txt': 'A', 'tree/real/keep': 'k' },
        setup: async (ctx) => symlink('real', join(ctx, 'tree/link')),
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'link', { type: 'symlink', target: 'real' });
        assert.deepEqual(await names(rootfs, 'real'), ['a.txt', 'keep']);
      },
    );
  });
});

describe('COPY symlinks and the context boundary', () => {
  it('keeps symlinks inside a copied directory as symlinks, and follows a top-level symlink', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY dir /d/', 'COPY link.txt /top/', 'COPY linkdir /viadir/'),
        files: { 'dir/real': 'R', 'real.txt': 'T', 'target/inner': 'I' },
        setup: async (ctx) => {
          await symlink('/etc/hosts', join(ctx, 'dir/abs'));
          await symlink('real', join(ctx, 'dir/rel'));
          await symlink('../real.txt', join(ctx, 'dir/up'));
          await symlink('nowhere', join(ctx, 'dir/dangling'));
          await symlink('real.txt', join(ctx, 'link.txt'));
          await symlink('target', join(ctx, 'linkdir'));
        },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'd/abs', { type: 'symlink', target: '/etc/hosts' });
        await assertNode(rootfs, 'd/rel', { type: 'symlink', target: 'real' });
        await assertNode(rootfs, 'd/up', { type: 'symlink', target: '../real.txt' });
        await assertNode(rootfs, 'd/dangling', { type: 'symlink', target: 'nowhere' });
        await assertNode(rootfs, 'top/link.txt', { type: 'file', content: 'T' });
        await assertNode(rootfs, 'viadir/inner', { type: 'file', content: 'I' });
      },
    );
  });

  it('refuses a ../ source naming a path outside the context', async () => {
    await assertBuildFails(
      {
        dockerfile: df('FROM scratch', 'COPY a.txt /a', 'COPY ../outside.txt /x'),
        files: { 'a.txt': 'A' },
        setup: async (ctx) => writeFile(join(ctx, '..', 'outside.txt'), 'secret'),
      },
      3,
      /outside\.txt/,
    );
  });

  it('refuses a context symlink that leads outside the context', async () => {
    await assertBuildFails(
      {
        dockerfile: df('FROM scratch', 'COPY escape /x'),
        setup: async (ctx) => {
          await writeFile(join(ctx, '..', 'outside.txt'), 'secret');
          await symlink('../outside.txt', join(ctx, 'escape'));
        },
      },
      2,
      /escape/,
    );
  });

  it('refuses a path through a context symlink to a directory outside the context', async () => {
    await assertBuildFails(
      {
        dockerfile: df('FROM scratch', 'COPY esc/outside.txt /x'),
        setup: async (ctx) => {
          await writeFile(join(ctx, '..', 'outside.txt'), 'secret');
          await symlink('..', join(ctx, 'esc'));
        },
      },
      2,
      /esc\/outside\.txt/,
    );
  });
});

describe('COPY --chown and --chmod', () => {
  it('sets numeric ownership on files, directory contents and created parents', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'COPY --chown=1000:2000 a.txt /p/q/a.txt', 'COPY --chown=42 dir /d', 'COPY a.txt /root-owned'), files: { 'a.txt': 'A', 'dir/f': 'f', 'dir/s/g': 'g' } },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'p/q/a.txt', { type: 'file', uid: 1000, gid: 2000 });
        await assertNode(rootfs, 'p/q', { type: 'dir', uid: 1000, gid: 2000, mode: 0o755 });
        for (const p of ['d', 'd/f', 'd/s', 'd/s/g']) await assertNode(rootfs, p, { type: p.endsWith('s') || p === 'd' ? 'dir' : 'file', uid: 42, gid: 42 });
        await assertNode(rootfs, 'root-owned', { type: 'file', uid: 0, gid: 0 });
      },
    );
  });

  it('resolves user and group names from the image /etc/passwd and /etc/group', async () => {
    await withImage(
      {
        dockerfile: df(
          ...usersStage,
          'FROM users',
          'COPY --chown=alice:staff a.txt /both',
          'COPY --chown=alice a.txt /user-only',
          'COPY --chown=bob:0 a.txt /name-numeric',
          'COPY --chown=7:staff a.txt /numeric-name',
        ),
        files: { passwd, group, 'a.txt': 'A' },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'both', { type: 'file', uid: 1001, gid: 50 });
        await assertNode(rootfs, 'user-only', { type: 'file', uid: 1001, gid: 1002 });
        await assertNode(rootfs, 'name-numeric', { type: 'file', uid: 1003, gid: 0 });
        await assertNode(rootfs, 'numeric-name', { type: 'file', uid: 7, gid: 50 });
      },
    );
  });

  it('gives names the image does not list id 0 (or the user\'s gid), as BuildKit does', async () => {
    await withImage(
      {
        dockerfile: df(
          ...usersStage,
          'FROM users',
          'COPY --chown=mallory a.txt /unknown-user',
          'COPY --chown=alice:nogroup a.txt /unknown-group',
          'COPY --chown=root:staff a.txt /root-name',
        ),
        files: { passwd, group, 'a.txt': 'A' },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'unknown-user', { type: 'file', uid: 0, gid: 0 });
        await assertNode(rootfs, 'unknown-group', { type: 'file', uid: 1001, gid: 1002 });
        await assertNode(rootfs, 'root-name', { type: 'file', uid: 0, gid: 50 });
      },
    );
  });

  it('resolves root and numbers without /etc/passwd, and fails for a name in an empty stage', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'COPY --chown=root a.txt /root', 'COPY --chown=5:root a.txt /numeric', 'COPY --chown=nobody a.txt /later'), files: { 'a.txt': 'A' } },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'root', { type: 'file', uid: 0, gid: 0 });
        await assertNode(rootfs, 'numeric', { type: 'file', uid: 5, gid: 0 });
        // The stage has files by then, but no /etc/passwd: the name is not listed.
        await assertNode(rootfs, 'later', { type: 'file', uid: 0, gid: 0 });
      },
    );
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY --chown=alice a.txt /x'), files: { 'a.txt': 'A' } }, 2, /alice/);
  });

  it('creates WORKDIR directories for USER root, or a numeric user, in a scratch stage without /etc/passwd', async () => {
    await withImage(
      { dockerfile: df('FROM scratch', 'USER root', 'WORKDIR /app', 'USER 1234', 'WORKDIR /numeric', 'USER 5:6', 'WORKDIR /pair'), files: {} },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'app', { type: 'dir', uid: 0, gid: 0, mode: 0o755 });
        await assertNode(rootfs, 'numeric', { type: 'dir', uid: 1234, gid: 1234 });
        await assertNode(rootfs, 'pair', { type: 'dir', uid: 5, gid: 6 });
      },
    );
  });

  it('applies an octal --chmod to files and to copied directories', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY --chmod=640 a.txt /a', 'COPY --chmod=0750 dir /d', 'COPY --chmod=4755 a.txt /suid', 'COPY --chmod=1777 empty /tmp'),
        files: { 'a.txt': { content: 'A', mode: 0o644 }, 'dir/f': { content: 'f', mode: 0o600 }, 'dir/s/g': 'g' },
        setup: async (ctx) => mkdir(join(ctx, 'empty')),
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'a', { type: 'file', mode: 0o640 });
        // The directory the copy creates is 0755 whatever --chmod says, as in BuildKit.
        await assertNode(rootfs, 'd', { type: 'dir', mode: 0o755 });
        await assertNode(rootfs, 'd/f', { type: 'file', mode: 0o750 });
        await assertNode(rootfs, 'd/s', { type: 'dir', mode: 0o750 });
        await assertNode(rootfs, 'd/s/g', { type: 'file', mode: 0o750 });
        await assertNode(rootfs, 'suid', { type: 'file', mode: 0o4755 });
        await assertNode(rootfs, 'tmp', { type: 'dir', mode: 0o755 });
      },
    );
  });

  it('keeps setuid, setgid and sticky bits from the context without --chmod', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY special /s'),
        files: { 'special/suid': 'x', 'special/sgid': 'x', 'special/sticky/f': 'f' },
        setup: async (ctx) => {
          await chmod(join(ctx, 'special/suid'), 0o4755);
          await chmod(join(ctx, 'special/sgid'), 0o2750);
          await chmod(join(ctx, 'special/sticky'), 0o1777);
        },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 's/suid', { type: 'file', mode: 0o4755 });
        await assertNode(rootfs, 's/sgid', { type: 'file', mode: 0o2750 });
        await assertNode(rootfs, 's/sticky', { type: 'dir', mode: 0o1777 });
      },
    );
  });

  it('applies a symbolic --chmod', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY --chmod=u+x,g-r a.txt /a', 'COPY --chmod=a=rX dir /d', 'COPY --chmod=go= a.txt /private'),
        files: { 'a.txt': { content: 'A', mode: 0o644 }, 'dir/plain': { content: 'p', mode: 0o640 }, 'dir/exe': { content: 'e', mode: 0o700 } },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'a', { type: 'file', mode: 0o704 });
        await assertNode(rootfs, 'd/plain', { type: 'file', mode: 0o444 });
        await assertNode(rootfs, 'd/exe', { type: 'file', mode: 0o555 });
        await assertNode(rootfs, 'private', { type: 'file', mode: 0o600 });
      },
    );
  });

  it('rejects an invalid --chmod', async () => {
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY --chmod=u+q a.txt /a'), files: { 'a.txt': 'A' } }, 2, /chmod/);
  });
});

describe('COPY --exclude, --parents, --link', () => {
  it('--exclude filters directory contents and wildcard matches', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY --exclude=*.log --exclude=skip dir /d/', 'COPY --exclude=**/*.tmp tree /t/', 'COPY --exclude=*.txt hom* /mydir/'),
        files: {
          'dir/keep': 'k',
          'dir/a.log': 'l',
          'dir/skip/inner': 'i',
          'dir/sub/b.log': 'nested logs are not matched by *.log',
          'tree/x.tmp': 't',
          'tree/deep/y.tmp': 't',
          'tree/deep/z': 'z',
          'home.txt': 'h',
          'home.md': 'm',
          'homer': 'r',
        },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'd'), ['keep', 'sub']);
        assert.deepEqual(await names(rootfs, 'd/sub'), ['b.log']);
        assert.deepEqual(await names(rootfs, 't'), ['deep']);
        assert.deepEqual(await names(rootfs, 't/deep'), ['z']);
        assert.deepEqual(await names(rootfs, 'mydir'), ['home.md', 'homer']);
      },
    );
  });

  it('--parents keeps the source paths, from the context root or from a /./ pivot', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY --parents a/b/c.txt x/y.txt /out/', 'COPY --parents ./a/./b/c.txt /pivot/', 'COPY --parents */*.md /md/', 'COPY --parents a/b /dirs/'),
        files: { 'a/b/c.txt': 'C', 'a/b/d/e': 'E', 'x/y.txt': 'Y', 'p/one.md': '1', 'q/two.md': '2', 'top.md': 't' },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'out/a/b/c.txt', { type: 'file', content: 'C' });
        await assertNode(rootfs, 'out/x/y.txt', { type: 'file', content: 'Y' });
        assert.deepEqual(await names(rootfs, 'out'), ['a', 'x']);
        assert.deepEqual(await names(rootfs, 'pivot'), ['b']);
        await assertNode(rootfs, 'pivot/b/c.txt', { type: 'file', content: 'C' });
        assert.deepEqual(await names(rootfs, 'md'), ['p', 'q']);
        await assertNode(rootfs, 'md/q/two.md', { type: 'file', content: '2' });
        await assertNode(rootfs, 'dirs/a/b/d/e', { type: 'file', content: 'E' });
        await assertNode(rootfs, 'dirs/a/b/c.txt', { type: 'file', content: 'C' });
      },
    );
  });

  it('--link copies without looking at the image, yet produces the same files', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY a.txt /base/', 'COPY --link a.txt /linked/deep/', 'COPY --link --chmod=600 --chown=5:6 dir /ld'),
        files: { 'a.txt': 'A', 'dir/f': 'f' },
      },
      async ({ rootfs, dest }) => {
        await assertNode(rootfs, 'linked', { type: 'dir', mode: 0o755, uid: 0 });
        await assertNode(rootfs, 'linked/deep/a.txt', { type: 'file', content: 'A', mode: 0o644 });
        await assertNode(rootfs, 'ld/f', { type: 'file', content: 'f', mode: 0o600, uid: 5, gid: 6 });
        await assertNode(rootfs, 'base/a.txt', { type: 'file', content: 'A' });
        await validateLayout(dest);
      },
    );
  });
});

describe('.dockerignore', () => {
  it('hides ignored files from directory copies and wildcards', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY . /all/', 'COPY *.txt /txt/', 'COPY sub /sub/'),
        files: { '.dockerignore': 'secret.txt\n**/*.log\n!keep.log\n', 'secret.txt': 's', 'public.txt': 'p', 'a.log': 'l', 'keep.log': 'k', 'sub/b.log': 'l', 'sub/c': 'c' },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'all'), ['.dockerignore', 'Dockerfile', 'keep.log', 'public.txt', 'sub']);
        assert.deepEqual(await names(rootfs, 'all/sub'), ['c']);
        assert.deepEqual(await names(rootfs, 'txt'), ['public.txt']);
        assert.deepEqual(await names(rootfs, 'sub'), ['c']);
      },
    );
  });

  it('makes an explicitly named ignored file not found', async () => {
    await assertBuildFails(
      { dockerfile: df('FROM scratch', 'COPY secret.txt /'), files: { '.dockerignore': 'secret.txt\n', 'secret.txt': 's' } },
      2,
      /secret\.txt.*not found/,
    );
    await assertBuildFails(
      { dockerfile: df('FROM scratch', 'COPY hidden/file /'), files: { '.dockerignore': 'hidden\n', 'hidden/file': 's' } },
      2,
      /hidden\/file.*not found/,
    );
  });
});

describe('COPY file kinds and stages', () => {
  it('keeps hardlinked context files hardlinked', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY dir /h/'),
        files: { 'dir/a': 'same', 'dir/other': 'o' },
        setup: async (ctx) => {
          await link(join(ctx, 'dir/a'), join(ctx, 'dir/b'));
          await mkdir(join(ctx, 'dir/sub'));
          await link(join(ctx, 'dir/a'), join(ctx, 'dir/sub/c'));
        },
      },
      async ({ rootfs, dest }) => {
        const [a, b, c, other] = await Promise.all(['h/a', 'h/b', 'h/sub/c', 'h/other'].map((p) => lstat(join(rootfs, p))));
        assert.equal(a!.ino, b!.ino);
        assert.equal(a!.ino, c!.ino);
        assert.notEqual(a!.ino, other!.ino);
        assert.equal(a!.nlink, 3);
        assert.equal(await text(rootfs, 'h/sub/c'), 'same');
        await validateLayout(dest);
      },
    );
  });

  it('copies from an earlier stage by name and by index, keeping its ownership', async () => {
    await withImage(
      {
        dockerfile: df(
          'FROM scratch AS first',
          'COPY --chown=7:8 --chmod=700 a.txt /built/a.txt',
          'FROM scratch',
          'COPY b.txt /from-second',
          'FROM scratch',
          'COPY --from=first /built /by-name',
          'COPY --from=0 /built/a.txt /by-index',
          'COPY --from=1 /from-second /by-index-1',
          'COPY --from=first /built/*.txt /glob/',
        ),
        files: { 'a.txt': 'A', 'b.txt': 'B' },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'by-name/a.txt', { type: 'file', content: 'A', uid: 7, gid: 8, mode: 0o700 });
        await assertNode(rootfs, 'by-index', { type: 'file', content: 'A', uid: 7, gid: 8 });
        await assertNode(rootfs, 'by-index-1', { type: 'file', content: 'B' });
        await assertNode(rootfs, 'glob/a.txt', { type: 'file', content: 'A' });
        await assertAbsent(rootfs, 'built');
      },
    );
  });

  it('follows absolute symlinks of a stage inside that stage', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch AS first', 'COPY tree /', 'FROM scratch', 'COPY --from=first /lnk /out'),
        files: { 'tree/data/f': 'F' },
        setup: async (ctx) => symlink('/data/f', join(ctx, 'tree/lnk')),
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'out', { type: 'file', content: 'F' });
      },
    );
  });

  it('fails for a missing path in another stage', async () => {
    await assertBuildFails(
      { dockerfile: df('FROM scratch AS first', 'COPY a.txt /a', 'FROM scratch', 'COPY --from=first /nope /x'), files: { 'a.txt': 'A' } },
      4,
      /nope.*not found/,
    );
  });

  it('copies heredoc contents', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'ARG NAME=world', 'COPY <<EOF /greeting', 'hello ${NAME}', 'EOF', 'COPY <<one.txt <<"two.txt" /files/', 'first', 'one.txt', 'second ${NAME}', 'two.txt', 'COPY --chmod=755 <<EOF /bin/script', '#!/bin/sh', 'EOF'),
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'greeting', { type: 'file', content: 'hello world\n', mode: 0o644 });
        await assertNode(rootfs, 'files/one.txt', { type: 'file', content: 'first\n' });
        await assertNode(rootfs, 'files/two.txt', { type: 'file', content: 'second ${NAME}\n' });
        await assertNode(rootfs, 'bin/script', { type: 'file', content: '#!/bin/sh\n', mode: 0o755 });
      },
    );
  });

  it('refuses a URL source for COPY', async () => {
    await assertBuildFails({ dockerfile: df('FROM scratch', 'COPY http://127.0.0.1:1/x /x') }, 2, /URL/);
  });
});

/** Makes `name` (a tar, optionally compressed) of `dir/payload` with ownership 1234:5678. */
async function makeTar(ctx: string, name: string, flag: string): Promise<void> {
  await execFileAsync('tar', [`-c${flag}f`, join(ctx, name), '--owner=1234', '--group=5678', '--numeric-owner', '-C', join(ctx, 'payload'), '.']);
}

describe('ADD', () => {
  it('extracts local tar, tar.gz, tar.bz2 and tar.xz archives, keeping their ownership', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'ADD plain.tar /tar/', 'ADD gz.tar.gz /gz', 'ADD bz.tar.bz2 /bz/', 'ADD xz.tar.xz /xz/', 'ADD --chown=9:9 plain.tar /owned/'),
        files: { 'payload/top': 'T', 'payload/d/inner': 'I' },
        setup: async (ctx) => {
          await chmod(join(ctx, 'payload/d/inner'), 0o640);
          await symlink('d/inner', join(ctx, 'payload/ln'));
          await makeTar(ctx, 'plain.tar', '');
          await makeTar(ctx, 'gz.tar.gz', 'z');
          await makeTar(ctx, 'bz.tar.bz2', 'j');
          await makeTar(ctx, 'xz.tar.xz', 'J');
          await rm(join(ctx, 'payload'), { recursive: true });
        },
      },
      async ({ rootfs, dest }) => {
        for (const d of ['tar', 'gz', 'bz', 'xz']) {
          assert.deepEqual(await names(rootfs, d), ['d', 'ln', 'top'], d);
          await assertNode(rootfs, `${d}/top`, { type: 'file', content: 'T', uid: 1234, gid: 5678 });
          await assertNode(rootfs, `${d}/d/inner`, { type: 'file', content: 'I', mode: 0o640, uid: 1234, gid: 5678 });
          await assertNode(rootfs, `${d}/d`, { type: 'dir', uid: 1234, gid: 5678 });
          await assertNode(rootfs, `${d}/ln`, { type: 'symlink', target: 'd/inner' });
        }
        // --chown is for the directories the copy creates, not for the archive's entries.
        await assertNode(rootfs, 'owned', { type: 'dir', mode: 0o755, uid: 9, gid: 9 });
        await assertNode(rootfs, 'owned/top', { type: 'file', uid: 1234, gid: 5678 });
        await validateLayout(dest);
      },
    );
  });

  it('applies --chmod and --chown to a copied directory\'s contents, not to an extracted archive\'s, as BuildKit does', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'ADD --chmod=600 dir /d/', 'ADD --chmod=u=rwX,go= dir /symbolic/', 'ADD --chmod=600 plain.tar /t/', 'ADD --chown=7:8 --chmod=640 plain.tar /owned/'),
        files: { 'dir/f': 'f', 'dir/sub/g': 'g', 'payload/top': 'T', 'payload/d/inner': 'I' },
        setup: async (ctx) => {
          await chmod(join(ctx, 'dir'), 0o750);
          await chmod(join(ctx, 'payload/d/inner'), 0o640);
          await chmod(join(ctx, 'payload/d'), 0o700);
          await makeTar(ctx, 'plain.tar', '');
          await rm(join(ctx, 'payload'), { recursive: true });
        },
      },
      async ({ rootfs }) => {
        // The directory the copy creates is 0755; its contents take the mode.
        await assertNode(rootfs, 'd', { type: 'dir', mode: 0o755 });
        await assertNode(rootfs, 'd/f', { type: 'file', mode: 0o600 });
        await assertNode(rootfs, 'symbolic', { type: 'dir', mode: 0o755 });
        await assertNode(rootfs, 'symbolic/sub', { type: 'dir', mode: 0o700 });
        await assertNode(rootfs, 'symbolic/f', { type: 'file', mode: 0o600 });
        await assertNode(rootfs, 'd/sub', { type: 'dir', mode: 0o600 });
        await assertNode(rootfs, 't', { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
        await assertNode(rootfs, 't/top', { type: 'file', mode: 0o644, uid: 1234, gid: 5678 });
        await assertNode(rootfs, 't/d', { type: 'dir', mode: 0o700 });
        await assertNode(rootfs, 't/d/inner', { type: 'file', mode: 0o640 });
        await assertNode(rootfs, 'owned', { type: 'dir', mode: 0o755, uid: 7, gid: 8 });
        await assertNode(rootfs, 'owned/top', { type: 'file', mode: 0o644, uid: 1234, gid: 5678 });
      },
    );
  });

  it('skips an archive entry with an empty name, as BuildKit does', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'ADD empty-name.tar /x/'),
        setup: (ctx) => writeFile(join(ctx, 'empty-name.tar'), rawTar([{ name: '', content: Buffer.from('x') }, { name: 'ok.txt', content: Buffer.from('ok\n') }])),
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'x'), ['ok.txt']);
        await assertNode(rootfs, 'x', { type: 'dir', mode: 0o755 });
        await assertNode(rootfs, 'x/ok.txt', { type: 'file', content: 'ok\n' });
      },
    );
  });

  it('copies a non-archive file, and a gzip of a non-tar file, as they are', async () => {
    const gz = gzipSync(Buffer.from('not a tar\n'));
    await withImage(
      {
        dockerfile: df('FROM scratch', 'ADD notes.txt /n/', 'ADD data.gz /data.gz', 'ADD fake.tar /fake.tar', 'ADD --unpack=false real.tar /kept/'),
        files: { 'notes.txt': 'plain', 'fake.tar': 'this is not a tar', 'payload/x': 'x' },
        setup: async (ctx) => {
          await writeFile(join(ctx, 'data.gz'), gz);
          await makeTar(ctx, 'real.tar', '');
        },
      },
      async ({ rootfs }) => {
        await assertNode(rootfs, 'n/notes.txt', { type: 'file', content: 'plain' });
        await assertNode(rootfs, 'data.gz', { type: 'file' });
        assert.deepEqual(await readFile(join(rootfs, 'data.gz')), gz);
        await assertNode(rootfs, 'fake.tar', { type: 'file', content: 'this is not a tar' });
        await assertNode(rootfs, 'kept/real.tar', { type: 'file' });
      },
    );
  });

  describe('from a URL', () => {
    let server: Server;
    let base: string;
    let tarBody: Buffer;
    const payload = Buffer.from('downloaded payload\n');

    before(async () => {
      // A real tar, which ADD must not extract when it comes from a URL.
      const scratch = await mkdtemp(join(tmpdir(), 'tsbuild-copy-add-tar-'));
      await writeFiles(scratch, { 'payload/inner.txt': 'inner' });
      await makeTar(scratch, 'archive.tar', '');
      tarBody = await readFile(join(scratch, 'archive.tar'));
      await rm(scratch, { recursive: true, force: true });
      server = createServer((req, res) => {
        if (req.url === '/files/payload.txt') {
          res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': 'Tue, 01 Jan 2019 00:00:00 GMT' });
          res.end(payload);
        } else if (req.url === '/files/archive.tar') {
          res.writeHead(200);
          res.end(tarBody);
        } else {
          res.writeHead(404);
          res.end('missing');
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('downloads without extracting, named after the URL path, mode 0600', async () => {
      const digest = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
      await withImage(
        {
          dockerfile: df(
            'FROM scratch',
            `ADD ${base}/files/payload.txt /dl/`,
            `ADD ${base}/files/archive.tar /dl/`,
            `ADD ${base}/files/payload.txt /renamed`,
            `ADD --checksum=${digest} ${base}/files/payload.txt /checked/`,
            `ADD --chmod=644 ${base}/files/payload.txt /chmodded`,
          ),
        },
        async ({ rootfs }) => {
          await assertNode(rootfs, 'dl/payload.txt', { type: 'file', content: payload.toString(), mode: 0o600, uid: 0, gid: 0 });
          await assertNode(rootfs, 'dl/archive.tar', { type: 'file', mode: 0o600 });
          assert.equal((await lstat(join(rootfs, 'dl/archive.tar'))).size, tarBody.length);
          await assertNode(rootfs, 'renamed', { type: 'file', content: payload.toString(), mode: 0o600 });
          await assertNode(rootfs, 'checked/payload.txt', { type: 'file', content: payload.toString() });
          await assertNode(rootfs, 'chmodded', { type: 'file', mode: 0o644 });
          assert.equal((await lstat(join(rootfs, 'dl/payload.txt'))).mtime.toISOString(), '2019-01-01T00:00:00.000Z');
        },
      );
    });

    it('fails on a --checksum mismatch', async () => {
      const wrong = `sha256:${'0'.repeat(64)}`;
      await assertBuildFails({ dockerfile: df('FROM scratch', `ADD --checksum=${wrong} ${base}/files/payload.txt /x`) }, 2, /checksum/);
    });

    it('fails on an HTTP error', async () => {
      await assertBuildFails({ dockerfile: df('FROM scratch', `ADD ${base}/files/none /x`) }, 2, /404/);
    });
  });
});

describe('.dockerignore exceptions', () => {
  it('keeps a re-included file inside an ignored directory', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY . /all/', 'COPY build /b/', 'COPY build/keep.txt /k/', 'COPY bui* /glob/'),
        files: { '.dockerignore': 'build\n!build/keep.txt\n', 'build/keep.txt': 'k', 'build/drop.txt': 'd', 'build/sub/x': 'x', 'a': 'a' },
        setup: async (ctx) => chmod(join(ctx, 'build'), 0o750),
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'all'), ['.dockerignore', 'Dockerfile', 'a', 'build']);
        assert.deepEqual(await names(rootfs, 'all/build'), ['keep.txt']);
        await assertNode(rootfs, 'all/build', { type: 'dir', mode: 0o750 });
        assert.deepEqual(await names(rootfs, 'b'), ['keep.txt']);
        await assertNode(rootfs, 'k/keep.txt', { type: 'file', content: 'k' });
        assert.deepEqual(await names(rootfs, 'glob'), ['keep.txt']);
      },
    );
  });

  it('supports the "ignore everything but" idiom', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY . /app/', 'COPY src /src/'),
        files: { '.dockerignore': '*\n!src/**\n', 'src/main.c': 'm', 'src/lib/util.c': 'u', 'README': 'r', 'other/x': 'x' },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'app'), ['src']);
        assert.deepEqual(await names(rootfs, 'app/src'), ['lib', 'main.c']);
        await assertNode(rootfs, 'app/src/lib/util.c', { type: 'file', content: 'u' });
        assert.deepEqual(await names(rootfs, 'src'), ['lib', 'main.c']);
      },
    );
  });

  it('still reports an ignored directory with nothing re-included as not found', async () => {
    await assertBuildFails(
      { dockerfile: df('FROM scratch', 'COPY build /b/'), files: { '.dockerignore': 'build\n!other/keep\n', 'build/x': 'x', 'other/keep': 'k' } },
      2,
      /build.*not found/,
    );
  });

  it('applies ! exceptions in --exclude', async () => {
    await withImage(
      {
        dockerfile: df('FROM scratch', 'COPY --exclude=docs --exclude=!docs/README.md proj /p/'),
        files: { 'proj/docs/README.md': 'r', 'proj/docs/internal.md': 'i', 'proj/main.c': 'm' },
      },
      async ({ rootfs }) => {
        assert.deepEqual(await names(rootfs, 'p'), ['docs', 'main.c']);
        assert.deepEqual(await names(rootfs, 'p/docs'), ['README.md']);
      },
    );
  });
});
