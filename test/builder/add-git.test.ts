/**
 * End-to-end ADD of a git repository: a repository made here with git is served over git's
 * static ("dumb") HTTP protocol by a file server on 127.0.0.1, added by ref and subdirectory, and
 * the image is unpacked with umoci.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { buildForTest } from '../support/build-for-test.js';
import { SourceError } from '../../layers/errors.js';
import { unpackWithUmoci } from '../support/validate-layout.js';

const run = promisify(execFile);

describe('ADD from a git repository', () => {
  let work: string;
  let server: Server;
  let repoUrl: string;
  const commits: Record<'v1' | 'main', { hash: string; time: number }> = { v1: { hash: '', time: 0 }, main: { hash: '', time: 0 } };

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'tsbuild-add-git-'));
    const source = path.join(work, 'source');
    await mkdir(path.join(source, 'bin'), { recursive: true });
    await mkdir(path.join(source, 'sub/deep'), { recursive: true });
    const git = (args: string[], time?: number): Promise<{ stdout: string }> =>
      run('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {
        cwd: source,
        env: { ...process.env, ...(time !== undefined ? { GIT_AUTHOR_DATE: `@${time} +0000`, GIT_COMMITTER_DATE: `@${time} +0000` } : {}) },
      });
    await git(['init', '--quiet', '--initial-branch=main']);
    await writeFile(path.join(source, 'a.txt'), 'version one\n');
    await writeFile(path.join(source, 'bin/run.sh'), '#!/bin/sh\necho run\n');
    await chmod(path.join(source, 'bin/run.sh'), 0o700);
    await writeFile(path.join(source, 'sub/deep/x.txt'), 'deep\n');
    await symlink('a.txt', path.join(source, 'link'));
    await git(['add', '-A']);
    await git(['commit', '--quiet', '-m', 'one'], 1_600_000_000);
    await git(['tag', 'v1']);
    await writeFile(path.join(source, 'a.txt'), 'version two\n');
    await git(['commit', '--quiet', '-am', 'two'], 1_650_000_000);
    commits.v1 = { hash: (await git(['rev-parse', 'v1'])).stdout.trim(), time: 1_600_000_000 };
    commits.main = { hash: (await git(['rev-parse', 'main'])).stdout.trim(), time: 1_650_000_000 };
    const served = path.join(work, 'served');
    await mkdir(served);
    await run('git', ['clone', '--quiet', '--bare', source, path.join(served, 'repo.git')]);
    await run('git', ['update-server-info'], { cwd: path.join(served, 'repo.git') });
    server = createServer((req, res) => {
      const file = path.join(served, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
      stat(file).then(
        (info) => {
          if (!file.startsWith(`${served}/`) || !info.isFile()) throw new Error('not a file');
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          createReadStream(file).pipe(res);
        },
        () => {
          res.writeHead(404);
          res.end();
        },
      ).catch(() => {
        res.writeHead(404);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    repoUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/repo.git`;
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });

  /** Builds a Dockerfile with an empty context and returns the unpacked image and its cleanup. */
  async function buildImage(name: string, dockerfile: string): Promise<{ rootfs: string; cleanup: () => Promise<void> }> {
    const context = path.join(work, `${name}-context`);
    await mkdir(context);
    await writeFile(path.join(context, 'Dockerfile'), dockerfile);
    const dest = path.join(work, `${name}-image`);
    await buildForTest({ context, outputs: [{ type: 'oci', dest, tar: false }], tags: ['t:1'], cacheDir: path.join(work, `${name}-cache`) });
    return unpackWithUmoci(dest, 't:1');
  }

  it('adds the tree of a tag with git modes, symlinks and the commit time, and no .git', async () => {
    const { rootfs, cleanup } = await buildImage('tag', `FROM scratch\nADD ${repoUrl}#v1 /src\n`);
    try {
      const at = (p: string): string => path.join(rootfs, 'src', p);
      assert.equal(await readFile(at('a.txt'), 'utf8'), 'version one\n');
      assert.equal((await stat(at('bin/run.sh'))).mode & 0o7777, 0o755);
      assert.equal((await stat(at('a.txt'))).mode & 0o7777, 0o644);
      assert.equal((await lstat(at('link'))).isSymbolicLink(), true);
      assert.equal((await stat(at('a.txt'))).mtimeMs, commits.v1.time * 1000);
      assert.deepEqual((await readdir(path.join(rootfs, 'src'))).sort(), ['a.txt', 'bin', 'link', 'sub']);
    } finally {
      await cleanup();
    }
  });

  it('adds the default branch without a ref, a branch by name, and a subdirectory', async () => {
    const dockerfile = `FROM scratch\nADD ${repoUrl} /head\nADD ${repoUrl}#main /branch\nADD ${repoUrl}#v1:sub/deep /deep\n`;
    const { rootfs, cleanup } = await buildImage('refs', dockerfile);
    try {
      assert.equal(await readFile(path.join(rootfs, 'head/a.txt'), 'utf8'), 'version two\n');
      assert.equal(await readFile(path.join(rootfs, 'branch/a.txt'), 'utf8'), 'version two\n');
      assert.deepEqual(await readdir(path.join(rootfs, 'deep')), ['x.txt']);
    } finally {
      await cleanup();
    }
  });

  it('adds a commit by hash, checks --checksum against it, and keeps .git with --keep-git-dir', async () => {
    const dockerfile = `FROM scratch\nADD --checksum=${commits.v1.hash} ${repoUrl}#${commits.v1.hash} /pinned\nADD --keep-git-dir ${repoUrl}#v1 /kept\n`;
    const { rootfs, cleanup } = await buildImage('commit', dockerfile);
    try {
      assert.equal(await readFile(path.join(rootfs, 'pinned/a.txt'), 'utf8'), 'version one\n');
      assert.equal((await lstat(path.join(rootfs, 'kept/.git'))).isDirectory(), true);
    } finally {
      await cleanup();
    }
  });

  it('fails at the line for an unknown ref, a wrong checksum and an unreachable repository', async () => {
    const cases: [string, RegExp][] = [
      [`ADD ${repoUrl}#no-such-ref /x`, /ref "no-such-ref" not found in http:/],
      [`ADD --checksum=${commits.main.hash} ${repoUrl}#v1 /x`, new RegExp(`expected commit ${commits.main.hash}, got ${commits.v1.hash}$`)],
      [`ADD ${repoUrl.replace('repo.git', 'missing.git')} /x`, /git clone failed: /],
    ];
    for (const [[instruction, message], i] of cases.map((c, n) => [c, n] as const)) {
      const context = path.join(work, `failing-${i}`);
      await mkdir(context);
      await writeFile(path.join(context, 'Dockerfile'), `FROM scratch\n\n${instruction}\n`);
      await assert.rejects(buildForTest({ context, outputs: [{ type: 'oci', dest: path.join(work, `failing-${i}-image`), tar: false }], cacheDir: path.join(work, `failing-${i}-cache`) }), (err: unknown) => {
        assert.ok(err instanceof SourceError, String(err));
        assert.match(err.message, /\/Dockerfile:3: /);
        assert.match(err.message, message);
        assert.ok(!err.message.includes('\n'), err.message);
        return true;
      });
    }
  });
});
