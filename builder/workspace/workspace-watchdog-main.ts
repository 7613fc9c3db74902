/**
 * Run by the workspace watchdog (see workspace-watchdog.ts), which waits until its build has closed the pipe:
 * `node workspace-watchdog-main.js ROOT NAME` sweeps the workspace NAME in ROOT if its owner is gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';

const [root, name] = process.argv.slice(2);
if (root === undefined || name === undefined) throw new Error('usage: workspace-watchdog-main.js ROOT NAME');
// Started directly (no sh on the host), wait here until the build closes the pipe; after sh it is closed already.
await new Promise<void>((resolve) => {
  process.stdin.on('close', resolve).on('end', resolve).on('error', () => resolve()).resume();
});
// Loaded only now: where it waits as Node (no sh), it loads nothing while the build starts up.
const { ownerIsGone } = await import('../cache/local-store-owners.js');
const { sweepIfOwnerGone, workspacePrefix } = await import('./workspace-sweep.js');
// A dying process closes its files an instant before it counts as gone.
for (let tries = 0; tries < 100 && !(await ownerIsGone(path.join(root, name), name.slice(workspacePrefix.length))); tries++) await sleep(50);
const failure = await sweepIfOwnerGone(root, name);
if (failure !== undefined) {
  process.stderr.write(`${failure}\n`);
  process.exitCode = 1;
}
