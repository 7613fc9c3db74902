/**
 * Build cache payoff: wall time of a Debian-based build with several RUN and COPY steps, built cold
 * (empty rootfs and build caches), rebuilt after one source file changed, then rebuilt unchanged.
 * Each build is a `tsbuild` CLI process, as a CI job runs it. The base is the test suite's Debian
 * bookworm minbase layout (made once with debootstrap). Prints the median of each kind over the
 * rounds, its ratio to the cold build, and how many steps came from the cache.
 *
 *     node dist/bench/cache-rebuild.js [rounds]     (as root: RUN steps use runc or chroot)
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BuildEvent } from '../builder/progress.js';
import { debianBookwormImage } from '../test/support/debian-image.js';
import { repoRoot } from '../test/support/repo-root.js';
import { median } from './median.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const SOURCE_FILES = 400;
const CHANGED_FILE = 'src/module-0042.js';

const dockerfile = `FROM debian:bookworm
RUN useradd --create-home --uid 1000 app
WORKDIR /opt/app
COPY deps.txt ./
RUN while read -r dep; do mkdir -p "vendor/$dep" && echo "$dep" > "vendor/$dep/VERSION"; done < deps.txt
COPY src/ ./src/
RUN find src -type f | sort | xargs cat | sha256sum > build.sum
RUN cp -a src dist && chown -R app:app dist
COPY README.txt ./
USER app
CMD ["cat", "/opt/app/build.sum"]
`;

interface Measured {
  readonly seconds: number;
  readonly cached: number;
  readonly steps: number;
  readonly digest: string;
}

async function writeContext(dir: string): Promise<void> {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'deps.txt'), Array.from({ length: 40 }, (_, i) => `dep-${i}`).join('\n') + '\n');
  await writeFile(join(dir, 'README.txt'), 'cache benchmark\n');
  for (let i = 0; i < SOURCE_FILES; i++) {
    const name = `module-${String(i).padStart(4, '0')}.js`;
    await writeFile(join(dir, 'src', name), `export const value${i} = ${i};\n`.repeat(100));
  }
}

/** Runs one CLI build and reads its step events and the exported digest. */
async function timedBuild(context: string, cacheDir: string, output: string, base: { layoutDir: string; tag: string }): Promise<Measured> {
  const args = [
    join(repoRoot(), 'dist/cli/main.js'), '--progress', 'json', '--source-date-epoch', '1700000000',
    '--build-context', `debian:bookworm=oci-layout://${base.layoutDir}:${base.tag}`,
    '-t', 'bench:1', '--output', `type=oci,dest=${output}`, context,
  ];
  const started = performance.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, TSBUILD_CACHE_DIR: cacheDir }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`build failed (exit ${code}):\n${stderr}`);
  const events = stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as BuildEvent);
  const cacheEvents = events.filter((event) => event.kind === 'step-cache');
  const exported = events.find((event) => event.kind === 'exported');
  return {
    seconds,
    cached: cacheEvents.filter((event) => event.cached).length,
    steps: cacheEvents.length,
    digest: exported?.digest ?? 'none',
  };
}

const base = await debianBookwormImage();
const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-cache-'));
const results = { cold: [] as Measured[], oneFileChanged: [] as Measured[], unchanged: [] as Measured[] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    const context = join(work, `context-${round}`);
    const cacheDir = join(work, `cache-${round}`);
    await writeContext(context);
    results.cold.push(await timedBuild(context, cacheDir, join(work, `cold-${round}`), base));
    const changed = join(context, CHANGED_FILE);
    await writeFile(changed, (await readFile(changed, 'utf8')) + '// changed\n');
    results.oneFileChanged.push(await timedBuild(context, cacheDir, join(work, `changed-${round}`), base));
    results.unchanged.push(await timedBuild(context, cacheDir, join(work, `unchanged-${round}`), base));
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

const cold = median(results.cold.map((m) => m.seconds));
console.log(`Debian bookworm base, ${SOURCE_FILES} source files, ${results.cold[0]!.steps} cacheable steps, ${ROUNDS} rounds (median)`);
console.log('| build | wall time | vs cold | steps cached |');
console.log('|---|---|---|---|');
for (const [label, runs] of [['cold', results.cold], [`${CHANGED_FILE} changed`, results.oneFileChanged], ['unchanged', results.unchanged]] as const) {
  const seconds = median(runs.map((m) => m.seconds));
  console.log(`| ${label} | ${seconds.toFixed(2)} s | ${(seconds / cold).toFixed(2)}× | ${runs[0]!.cached}/${runs[0]!.steps} |`);
}
const sameDigest = results.unchanged.every((m, i) => m.digest === results.oneFileChanged[i]!.digest);
console.log(`a fully cached rebuild gives the digest of the build before it: ${sameDigest ? 'yes' : 'NO'}`);
