import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { repoRoot } from '../support/repo-root.js';
import { requiresInTest } from '../support/requirement.js';
import { tempDir, tsbuild, type CliResult } from './cli-harness.js';

const run = promisify(execFile);

let work: { dir: string; cleanup: () => Promise<void> };
let env: NodeJS.ProcessEnv;
before(async () => {
  work = await tempDir('tsbuild-messages');
  env = { TSBUILD_CACHE_DIR: path.join(work.dir, 'cache') };
});
after(async () => work.cleanup());

async function context(name: string, dockerfile?: string): Promise<string> {
  const dir = path.join(work.dir, name);
  await mkdir(dir, { recursive: true });
  if (dockerfile !== undefined) await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
  return dir;
}

/** A failure as users see it: exit code 1 or 2, exactly one line, starting with `error:`, no stack trace. */
function assertOneLineError(result: CliResult, pattern: RegExp): void {
  assert.notEqual(result.code, 0, result.stderr);
  const lines = result.stderr.split('\n').filter((line) => line !== '');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, /^error: /);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.match(lines[0]!, pattern);
}

describe('one-line errors with the cause and the fix', () => {
  test('a missing Dockerfile names the path and -f', async () => {
    const dir = await context('no-dockerfile');
    assertOneLineError(await tsbuild([dir], env), /^error: no Dockerfile at \S+\/no-dockerfile\/Dockerfile: add a Dockerfile to \S+ or name one with -f\/--file PATH$/);
    assertOneLineError(await tsbuild(['-f', path.join(dir, 'Other.dockerfile'), dir], env), /no Dockerfile at \S+Other\.dockerfile: check the path given to -f\/--file$/);
    assertOneLineError(await tsbuild([path.join(work.dir, 'absent')], env), /build context \S+absent does not exist/);
    assertOneLineError(await tsbuild(['-f', dir, dir], env), /is a directory, not a Dockerfile/);
  });

  test('an unknown platform is refused with the known ones', async () => {
    const dir = await context('platform', 'FROM scratch\n');
    assertOneLineError(await tsbuild(['--platform', 'linux/amd65', dir], env), /^error: invalid platform "linux\/amd65": unknown architecture "amd65" \(known: 386, amd64, .*\); write os\/arch\[\/variant\], e\.g\. linux\/amd64/);
    assertOneLineError(await tsbuild(['--platform', 'linucks/amd64', dir], env), /unknown operating system "linucks"/);
    assertOneLineError(await tsbuild(['--platform', 'linux/arm/v9', dir], env), /unknown variant "v9" of arm \(known: v5, v6, v7, v8\)/);
    const fromLine = await context('platform-from', 'FROM --platform=linux/amd65 scratch\n');
    assertOneLineError(await tsbuild([fromLine], env), /Dockerfile:1: invalid platform "linux\/amd65"/);
  });

  test('COPY --from a name that is no stage says so and names the stages', async () => {
    // `nostage` parses as an image reference: it is tried as one, and the failure is reported with the stages.
    const dir = await context('nostage', 'FROM scratch AS build\nCOPY Dockerfile /\nFROM scratch AS assets\nFROM scratch\nCOPY --from=nostage /a /b\n');
    const result = await tsbuild(['--progress', 'plain', dir], { ...env, DOCKER_CONFIG: path.join(work.dir, 'no-docker-config') });
    assertOneLineError(result, /Dockerfile:5: --from=nostage: no build stage named "nostage" \(stages before this one: build, assets\), and no image "nostage" could be resolved either \(.+\): name an earlier stage or a full image reference$/);
    // `No_Stage` is no image reference: not even tried.
    const invalid = await context('invalid-ref', 'FROM scratch AS build\nFROM scratch\nCOPY --from=No_Stage /a /b\n');
    assertOneLineError(await tsbuild([invalid], env), /--from=No_Stage: no build stage named "No_Stage" \(stages before this one: build\), and "No_Stage" is not a valid image reference either/);
  });

  test('a RUN for an architecture without a binfmt handler fails before the build with the fix', async (t) => {
    // An architecture this host has no handler for (binfmt_misc not mounted counts as none).
    const candidates = [['s390x', 's390x'], ['ppc64le', 'ppc64le'], ['riscv64', 'riscv64'], ['mips64le', 'mips64el']] as const;
    const free = candidates.find(([, qemu]) => handlersFor(qemu).length === 0);
    if (free === undefined) return requiresInTest(t, `an architecture without a binfmt handler (this host emulates ${candidates.map(([a]) => a).join(', ')})`);
    const [arch, qemu] = free;
    const dir = await context('binfmt', 'FROM scratch\nCOPY Dockerfile /\nRUN true\n');
    const result = await tsbuild(['--platform', `linux/${arch}`, '--progress', 'plain', '-o', `type=oci,dest=${path.join(work.dir, 'binfmt-out')}`, dir], env);
    const expected = new RegExp(`^error: \\S*Dockerfile:3: RUN for linux/${arch} cannot run on this linux/\\w+ host: no binfmt_misc handler executes ${qemu} binaries .*install qemu-user-static .*update-binfmts --enable qemu-${qemu}`);
    assertOneLineError(result, expected);
    assert.equal(existsSync(path.join(work.dir, 'binfmt-out')), false, 'nothing is written');
  });

  test('--help describes --progress and --compression', async () => {
    const { stdout } = await run(process.execPath, [path.join(repoRoot(), 'dist/cli/main.js'), 'build', '--help']);
    const described = (flag: string): string => stdout.slice(stdout.indexOf(`--${flag} `)).split('\n')[0]!;
    assert.match(described('progress'), /--progress\s+how progress is shown/);
    assert.match(described('compression'), /--compression\s+how layers are compressed/);
    assert.match(stdout, /--report\s+layer report/);
  });

  test('bad buildx flag values are one line each', async () => {
    const dir = await context('flags', 'FROM scratch\n');
    assertOneLineError(await tsbuild(['--cache-to', 'type=gha', dir], env), /invalid --cache-to "type=gha": unsupported cache type "gha" \(supported: registry, local\)/);
    assertOneLineError(await tsbuild(['--cache-from', 'type=local,dest=x', dir], env), /unsupported key "dest" for type=local \(supported: src\)/);
    assertOneLineError(await tsbuild(['--cache-to', 'type=registry,ref=127.0.0.1:5000/app:cache', dir], env), /ref names a repository, not a tag/);
    assertOneLineError(await tsbuild(['--cache-from', 'type=local,src=a', '--cache-to', 'type=local,dest=b', dir], env), /one cache directory per build, .* name a and b/);
    assertOneLineError(await tsbuild(['--add-host', 'db.local', dir], env), /invalid --add-host "db\.local": expected HOST:IP/);
    assertOneLineError(await tsbuild(['--add-host', 'db:10.0.0.300', dir], env), /"10\.0\.0\.300" is not an IPv4 or IPv6 address/);
    assertOneLineError(await tsbuild(['--network', 'bridge', dir], env), /Invalid values:/);
  });

  test('kaniko flags without an equivalent are refused, each with what to do instead', async () => {
    const dir = await context('kaniko', 'FROM scratch\n');
    const base = ['executor', '--context', `dir://${dir}`, '--no-push'];
    assertOneLineError(await tsbuild([...base, '--single-snapshot'], env), /^error: kaniko flag --single-snapshot has no tsbuild equivalent: tsbuild writes one layer per step/);
    assertOneLineError(await tsbuild([...base, '--registry-mirror', 'mirror.gcr.io'], env), /--registry-mirror has no tsbuild equivalent/);
    assertOneLineError(await tsbuild([...base, '--no-such-flag'], env), /kaniko flag\(s\) not known to tsbuild executor: no-such-flag/);
    assertOneLineError(await tsbuild(['executor', '--context', `dir://${dir}`], env), /you must provide --destination, or use --no-push/);
    assertOneLineError(await tsbuild([...base, '--context', `s3://bucket/ctx.tar.gz`], env), /kaniko context s3:\/\/ is not supported/);
    assertOneLineError(await tsbuild(['executor', '--context', dir, '--destination', 'registry.example.com/app:1', '--skip-tls-verify'], env), /tsbuild always verifies TLS, so it cannot skip that for registry\.example\.com/);
    assertOneLineError(await tsbuild([...base, '--cache=true'], env), /if using cache with --no-push, specify cache repo with --cache-repo/);
  });
});

/** The binfmt_misc handlers registered for an architecture, read the way an administrator would. */
function handlersFor(qemuArch: string): string[] {
  const dir = '/proc/sys/fs/binfmt_misc';
  if (!existsSync(path.join(dir, 'status'))) return [];
  return readdirSync(dir).filter((name) => name.includes(qemuArch) && readFileSync(path.join(dir, name), 'utf8').startsWith('enabled'));
}
