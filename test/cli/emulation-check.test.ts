import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { checkEmulation } from '../../builder/isolation/emulation-check.js';
import type { BuildPlan } from '../../builder/model/plan.js';
import type { Platform } from '../../layers/types.js';
import { tempDir } from './cli-harness.js';

// binfmt_misc as the kernel shows it, in a directory of its own: this host's may have other handlers, or none mounted.
let work: { dir: string; cleanup: () => Promise<void> };
before(async () => {
  work = await tempDir('tsbuild-binfmt');
});
after(async () => work.cleanup());

const amd64: Platform = { os: 'linux', architecture: 'amd64' };
const arm64: Platform = { os: 'linux', architecture: 'arm64' };

/** A plan with one stage for `platform` whose second line is a RUN step (or a COPY). */
function plan(platform: Platform, kind: 'run' | 'copy' = 'run'): BuildPlan {
  const step = { kind, location: { file: 'Dockerfile', startLine: 2, endLine: 2 } };
  return { dockerfile: 'Dockerfile', notes: [], platforms: [{ platform, targetIndex: 0, stages: [{ index: 0, platform, steps: [step] }] }] } as unknown as BuildPlan;
}

async function binfmt(name: string, handlers: Record<string, string>, status = 'enabled'): Promise<string> {
  const dir = path.join(work.dir, name);
  await mkdir(dir);
  await writeFile(path.join(dir, 'register'), '');
  await writeFile(path.join(dir, 'status'), `${status}\n`);
  for (const [handler, text] of Object.entries(handlers)) await writeFile(path.join(dir, handler), text);
  return dir;
}

const qemuAarch64 = 'enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n';

test('a registered, enabled handler for the architecture lets the build go on', async () => {
  checkEmulation(plan(arm64), amd64, await binfmt('registered', { 'qemu-aarch64': qemuAarch64 }));
});

test('no handler, a disabled one, or binfmt_misc disabled: the RUN line is named with the fix', async () => {
  const cases = [
    await binfmt('empty', {}),
    await binfmt('disabled-entry', { 'qemu-aarch64': qemuAarch64.replace('enabled', 'disabled') }),
    await binfmt('disabled-all', { 'qemu-aarch64': qemuAarch64 }, 'disabled'),
    await binfmt('other-arch', { 'qemu-s390x': 'enabled\ninterpreter /usr/bin/qemu-s390x\nflags: F\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n'.replace('0200b700', '00020016').replace('02010100', '02020100') }),
  ];
  for (const dir of cases) {
    assert.throws(() => checkEmulation(plan(arm64), amd64, dir), /^SourceError: Dockerfile:2: RUN for linux\/arm64 cannot run on this linux\/amd64 host: no binfmt_misc handler executes aarch64 binaries .*qemu-user-static/);
  }
});

test('native and compatible architectures, and steps without RUN, need no handler', async () => {
  const empty = await binfmt('none', {});
  checkEmulation(plan(amd64), amd64, empty);
  checkEmulation(plan({ os: 'linux', architecture: '386' }), amd64, empty);
  checkEmulation(plan(arm64, 'copy'), amd64, empty);
});
