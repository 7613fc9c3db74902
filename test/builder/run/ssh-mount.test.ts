/**
 * RUN --mount=type=ssh end to end on the Debian base: a stand-in SSH agent (a socket that answers
 * one line) is given with `--ssh`, and a step talks to it through the mounted relay with perl.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildForTest } from '../../support/build-for-test.js';
import { findOciRuntime } from '../../../builder/isolation/find-runtime.js';
import { lstatOrUndefined } from '../../../layers/fs-util.js';
import { debianBookwormImage } from '../../support/debian-image.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';
import { requires } from '../../support/requirement.js';

const skip = requires(process.getuid?.() !== 0 ? 'needs root' : (await findOciRuntime()) === undefined ? 'needs an OCI runtime' : false);

describe('RUN --mount=type=ssh', { skip }, () => {
  let work: string;
  let agent: Server;
  let agentSocket: string;
  let base: string;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-ssh-'));
    agentSocket = path.join(work, 'agent.sock');
    agent = createServer((connection) => {
      connection.once('data', (request) => connection.end(`agent got ${request.toString().trim()}\n`));
    });
    await new Promise<void>((resolve) => agent.listen(agentSocket, resolve));
    const debian = await debianBookwormImage();
    base = `debian:bookworm=oci-layout://${debian.layoutDir}:${debian.tag}`;
  });

  after(async () => {
    await new Promise<void>((resolve) => agent.close(() => resolve()));
    await rm(work, { recursive: true, force: true });
  });

  async function contextWith(name: string, run: string): Promise<string> {
    const dir = path.join(work, name);
    await mkdir(dir);
    await writeFile(path.join(dir, 'Dockerfile'), `FROM debian:bookworm\n${run}\n`);
    return dir;
  }

  test('a step reaches the agent through a relay socket with the mount\'s owner and mode, and the socket stays out of the image', async () => {
    const talk = `perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die "connect: $!"; print $s "ping\\n"; print scalar <$s>'`;
    const context = await contextWith('relay', `RUN --mount=type=ssh,uid=1000,mode=0660 stat -c '%a %u' "$SSH_AUTH_SOCK" > /socket && echo "$SSH_AUTH_SOCK" >> /socket && ${talk} > /reply`);
    const dest = path.join(work, 'relay-image');
    await buildForTest({ context, buildContexts: [base], ssh: [`default=${agentSocket}`], outputs: [{ type: 'oci', dest, tar: false }], tags: ['t:1'], compressionLevel: 1, noCache: true });
    const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
    try {
      assert.equal(await readFile(path.join(rootfs, 'reply'), 'utf8'), 'agent got ping\n');
      assert.equal(await readFile(path.join(rootfs, 'socket'), 'utf8'), '660 1000\n/run/buildkit/ssh_agent.0\n');
      assert.equal(await lstatOrUndefined(path.join(rootfs, 'run/buildkit')), undefined);
    } finally {
      await cleanup();
    }
  });

  test('--ssh refuses a path that is not a socket, before any step', async () => {
    const context = await contextWith('not-socket', 'RUN --mount=type=ssh true');
    await assert.rejects(
      buildForTest({ context, buildContexts: [base], ssh: [`default=${path.join(context, 'Dockerfile')}`], outputs: [{ type: 'oci', dest: path.join(work, 'none'), tar: false }] }),
      /--ssh default=.*Dockerfile: .*Dockerfile is not an SSH agent socket$/,
    );
  });
});
