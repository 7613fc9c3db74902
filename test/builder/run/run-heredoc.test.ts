/**
 * RUN with heredocs, as BuildKit runs them: a RUN that is nothing but one heredoc marker runs the
 * body as its script (a `#!` line honoured), while anything else on the line is run by the shell,
 * which reads the heredocs itself (on the command's stdin).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { buildForTest } from '../../support/build-for-test.js';
import { writeBusyboxImage } from '../../support/busybox-image.js';
import { unpackWithUmoci } from '../../support/validate-layout.js';

let work: string;
let baseLayout: string;
before(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'tsbuild-run-heredoc-'));
  baseLayout = path.join(work, 'busybox');
  await writeBusyboxImage(baseLayout);
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const dockerfile = [
  'FROM busybox',
  // Something after the marker: the shell runs `cat`, which reads the body on stdin.
  'RUN <<EOT cat > /stdin.txt',
  'echo body-not-run > /ran.txt',
  'EOT',
  'RUN cat <<A > /first.txt && cat <<"B" > /second.txt',
  'home $HOME',
  'A',
  'literal $HOME',
  'B',
  'RUN <<-EOT cat > /tabs.txt',
  '\tkept-by-shell',
  '\tEOT',
  // Nothing but the marker: the body is the script.
  'RUN <<EOT',
  'echo plain > /plain.txt',
  'EOT',
  'RUN <<-"EOT"',
  '\techo chomped > /chomped.txt',
  '\tEOT',
  'RUN <<EOT',
  '#!/bin/sh -e',
  'echo "shebang $HOME" > /shebang.txt',
  'EOT',
  // As in BuildKit, the stage's shell starts the script, by its path.
  'SHELL ["/bin/sh", "-c", "echo via-shell > /shell.txt; exec $0"]',
  'RUN <<EOT',
  '#!/bin/sh',
  'echo script > /script.txt',
  'EOT',
  '',
].join('\n');

test('RUN heredocs: the shell reads them, or the body is the script when the line is only the marker', async () => {
  const context = path.join(work, 'context');
  await mkdir(context, { recursive: true });
  await writeFile(path.join(context, 'Dockerfile'), dockerfile);
  const dest = path.join(work, 'image');
  await buildForTest({ context, tags: ['t:1'], outputs: [{ type: 'oci', dest, tar: false }], buildContexts: [`busybox=oci-layout://${baseLayout}`], noCache: true });
  const { rootfs, cleanup } = await unpackWithUmoci(dest, 't:1');
  try {
    const read = (name: string): Promise<string> => readFile(path.join(rootfs, name), 'utf8');
    assert.equal(await read('stdin.txt'), 'echo body-not-run > /ran.txt\n');
    await assert.rejects(read('ran.txt'), { code: 'ENOENT' });
    assert.equal(await read('first.txt'), 'home /root\n');
    assert.equal(await read('second.txt'), 'literal $HOME\n');
    assert.equal(await read('tabs.txt'), 'kept-by-shell\n');
    assert.equal(await read('plain.txt'), 'plain\n');
    assert.equal(await read('chomped.txt'), 'chomped\n');
    assert.equal(await read('shebang.txt'), 'shebang /root\n');
    assert.equal(await read('shell.txt'), 'via-shell\n');
    assert.equal(await read('script.txt'), 'script\n');
  } finally {
    await cleanup();
  }
});
