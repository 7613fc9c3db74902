import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { mappedLibraries, stashNodeRuntime } from '../../../builder/isolation/node-runtime.js';
import { requires } from '../../support/requirement.js';

const run = promisify(execFile);
const work = await mkdtemp(path.join(tmpdir(), 'tsbuild-node-runtime-'));
after(() => rm(work, { recursive: true, force: true }));

test('mappedLibraries lists each mapped shared object and native addon once', () => {
  const maps = [
    '7f00-7f01 r--p 00000000 08:01 11 /usr/lib/x86_64-linux-gnu/libc.so.6',
    '7f01-7f02 r-xp 00001000 08:01 11 /usr/lib/x86_64-linux-gnu/libc.so.6',
    '7f02-7f03 r--p 00000000 08:01 12 /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    '7f03-7f04 r--p 00000000 08:01 13 /opt/app/node_modules/koffi/build/koffi.node',
    '7f04-7f05 r--p 00000000 08:01 14 /usr/lib/locale/locale-archive',
    '7f05-7f06 rw-p 00000000 00:00 0 [heap]',
    '7f06-7f07 r--p 00000000 08:01 15 /usr/lib/libgone.so.1 (deleted)',
    '7f07-7f08 r--p 00000000 08:01 16 /usr/local/bin/node',
  ].join('\n');
  assert.deepEqual(mappedLibraries(maps), [
    '/usr/lib/x86_64-linux-gnu/libc.so.6',
    '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2',
    '/opt/app/node_modules/koffi/build/koffi.node',
  ]);
});

test('the stashed node runs with the system library directory hidden', { skip: requires(process.getuid?.() !== 0 && 'hiding a system directory needs root') }, async () => {
  const launcher = await stashNodeRuntime(path.join(work, 'runtime'));
  const libc = mappedLibraries(await readFile('/proc/self/maps', 'utf8')).find((file) => /^libc[.-]/.test(path.basename(file)));
  assert.ok(libc, 'node has the C library mapped');
  const hide = `mount -t tmpfs tmpfs ${path.dirname(libc)} && exec "$@"`;
  const script = 'process.stdout.write(process.version)';
  await assert.rejects(run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', hide, 'sh', process.execPath, '-e', script]), 'the host node cannot start without its libraries');
  const { stdout } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', hide, 'sh', launcher.command, ...launcher.args, '-e', script]);
  assert.equal(stdout, process.version);
});
