/**
 * ADD from a server that misbehaves: the build fails with one line naming the Dockerfile line and
 * the URL (without its credentials or query), never crashes, never hangs, and leaves no workspace.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanErrorLine, runCli } from './cli-process.js';

let work: string;
let server: Server;
let base: string;
const sockets = new Set<Socket>();

before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-add-url-'));
  server = createServer((req, res) => {
    const route = new URL(req.url ?? '/', 'http://x').pathname;
    if (route === '/mid-body') {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000, 'a'));
      setTimeout(() => req.socket.destroy(), 5);
    } else if (route === '/before-headers') {
      req.socket.destroy();
    } else if (route === '/silent') {
      // Never answers.
    } else if (route === '/drip') {
      res.writeHead(200, { 'content-length': '100000' });
      const timer = setInterval(() => res.write('a'), 100);
      res.on('close', () => clearInterval(timer));
    } else {
      res.writeHead(404).end();
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
});

let runs = 0;

/** Builds `FROM scratch` + `ADD url /x` with its own TMPDIR; returns the error line and what TMPDIR holds after. */
async function buildAdd(url: string, env: NodeJS.ProcessEnv = {}): Promise<{ line: string | undefined; stderr: string; leftover: string[]; ms: number; code: number | null }> {
  const dir = path.join(work, `run-${++runs}`);
  const tmp = path.join(dir, 'tmp');
  const context = path.join(dir, 'context');
  await mkdir(tmp, { recursive: true });
  await mkdir(context);
  await writeFile(path.join(context, 'Dockerfile'), `FROM scratch\nADD ${url} /x\n`);
  const result = await runCli(['build', '-q', '--no-cache', '-o', `type=oci,dest=${path.join(dir, 'out')}`, context], {
    TMPDIR: tmp,
    TSBUILD_CACHE_DIR: path.join(dir, 'cache'),
    TSBUILD_STORE: path.join(dir, 'store'),
    ...env,
  }, 20_000);
  return { line: cleanErrorLine(result.stderr), stderr: result.stderr, leftover: await readdir(tmp), ms: result.ms, code: result.code };
}

function assertCleanFailure(outcome: Awaited<ReturnType<typeof buildAdd>>, url: string, reason: RegExp): void {
  assert.equal(outcome.code, 4, `a failed download is a build context error: ${outcome.stderr}`);
  assert.ok(outcome.line, `not one clean error line:\n${outcome.stderr}`);
  assert.ok(outcome.line.includes(`Dockerfile:2: failed to download ${url}`), outcome.line);
  assert.match(outcome.line, reason);
  assert.deepEqual(outcome.leftover, [], 'the workspace was left behind');
}

describe('ADD <url> from a hostile server', () => {
  test('a server that closes mid-body fails cleanly every time (30 runs)', async () => {
    const url = `${base}/mid-body`;
    for (let batch = 0; batch < 10; batch++) {
      const outcomes = await Promise.all([0, 1, 2].map(() => buildAdd(url)));
      for (const outcome of outcomes) assertCleanFailure(outcome, url, /closed the connection/);
    }
  });

  test('a server that closes before the headers fails cleanly', async () => {
    const url = `${base}/before-headers`;
    assertCleanFailure(await buildAdd(url), url, /closed the connection/);
  });

  test('a server that never answers times out with the limit in the message', async () => {
    const url = `${base}/silent`;
    const outcome = await buildAdd(url, { TSBUILD_ADD_URL_TIMEOUT: '1' });
    assertCleanFailure(outcome, url, /no response after 1 s/);
    assert.ok(outcome.ms < 10_000, `took ${outcome.ms} ms`);
  });

  test('a download that trickles past the overall limit is stopped', async () => {
    const url = `${base}/drip`;
    const outcome = await buildAdd(url, { TSBUILD_ADD_URL_TIMEOUT: '1.5' });
    assertCleanFailure(outcome, url, /not finished after 1.5 s/);
    assert.ok(outcome.ms < 10_000, `took ${outcome.ms} ms`);
  });

  test('credentials and query are not shown', async () => {
    const port = new URL(base).port;
    const outcome = await buildAdd(`http://user:hunter2@127.0.0.1:${port}/mid-body?token=s3cr3t`);
    assertCleanFailure(outcome, `http://127.0.0.1:${port}/mid-body?…`, /closed the connection/);
    assert.doesNotMatch(outcome.stderr, /hunter2|s3cr3t/);
  });

  test('an invalid TSBUILD_ADD_URL_TIMEOUT is a clean error', async () => {
    const outcome = await buildAdd(`${base}/silent`, { TSBUILD_ADD_URL_TIMEOUT: 'soon' });
    assert.ok(outcome.line?.includes('invalid TSBUILD_ADD_URL_TIMEOUT "soon"'), outcome.stderr);
    assert.deepEqual(outcome.leftover, []);
  });
});
