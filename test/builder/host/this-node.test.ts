import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { mappedLibraries } from '../../../builder/isolation/node-runtime.js';
import { isDynamicLoader, startCommand } from '../../../builder/host/this-node.js';

const run = promisify(execFile);
const thisNodeModule = new URL('../../../builder/host/this-node.js', import.meta.url).href;

test('node started directly is started again the same way', () => {
  assert.deepEqual(startCommand(['/usr/bin/node', 'main.js', '--x'], '/usr/bin/node'), ['/usr/bin/node']);
});

test('node started through the loader keeps the loader, its options and the node binary', () => {
  const loader = '/tsbuild/lib/ld-linux-x86-64.so.2';
  const cmdline = [loader, '--library-path', '/tsbuild/lib', '--argv0', 'node', '/tsbuild/bin/node', '--max-old-space-size=100', 'main.js', ''];
  assert.deepEqual(startCommand(cmdline, loader), [loader, '--library-path', '/tsbuild/lib', '--argv0', 'node', '/tsbuild/bin/node']);
});

test('a real node started through its loader finds a command that starts node again', async () => {
  const loader = mappedLibraries(await readFile('/proc/self/maps', 'utf8')).find(isDynamicLoader);
  assert.ok(loader, 'this node is dynamically linked');
  const script = `import(${JSON.stringify(thisNodeModule)}).then((m) => console.log(JSON.stringify(m.nodeCommand())))`;
  const { stdout } = await run(loader, ['--library-path', path.dirname(loader), process.execPath, '-e', script]);
  const command = JSON.parse(stdout) as string[];
  assert.deepEqual(command, [loader, '--library-path', path.dirname(loader), process.execPath]);
  const again = await run(command[0]!, [...command.slice(1), '-e', 'console.log(process.versions.node)']);
  assert.equal(again.stdout.trim(), process.versions.node);
});
