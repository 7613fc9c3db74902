/**
 * Snapshot overhead per RUN step: the time to scan the tree after a step and diff it against the
 * scan from before, for a step that changes a handful of files. RUN steps do the same: each starts
 * from the previous step's final scan, so this is their whole cost, except for the first RUN of a
 * stage and one after a COPY or WORKDIR changed the tree, which scan once more first. Measured on a Debian minbase root
 * filesystem (made once with debootstrap and cached under the temp directory), or on a synthetic
 * tree of the same size when debootstrap is not possible. Two variants:
 *   - full: scan the whole root filesystem (a copy of it) and diffTrees;
 *   - overlay: the root filesystem as the lower layer of an overlay mount, scanning only the upper
 *     directory and diffOverlayUpper (needs root).
 * Prints median and 90th percentile milliseconds per step, and their ratio to the 30 ms target.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { diffTrees } from '../builder/snapshot/diff.js';
import { diffOverlayUpper } from '../builder/snapshot/overlay-diff.js';
import { scanTree, type TreeSnapshot } from '../builder/snapshot/scan.js';
import type { LayerEntry } from '../layers/entry.js';

const TARGET_MS = 30;
const STEPS = 30;
const SYNTHETIC_ENTRIES = 7000;
const CACHE = join(tmpdir(), 'tsbuild-bench-debian');
const DEFAULT_MIRROR = 'http://deb.debian.org/debian';

/** The Debian root filesystem, made on first use; undefined when it cannot be made here. */
function debianRootfs(): string | undefined {
  const rootfs = join(CACHE, 'rootfs');
  if (existsSync(rootfs)) return rootfs;
  if (process.getuid?.() !== 0) return undefined;
  const partial = join(CACHE, 'rootfs.partial');
  try {
    mkdirSync(CACHE, { recursive: true });
    rmSync(partial, { recursive: true, force: true });
    console.log(`making a Debian minbase root filesystem in ${rootfs} (once)...`);
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', partial, aptMirror()], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(partial, rootfs);
    return rootfs;
  } catch (error) {
    console.log(`debootstrap failed (${(error as Error).message.split('\n')[0]}); using a synthetic tree`);
    return undefined;
  }
}

/** The first Debian mirror configured for apt, in either sources format. */
function aptMirror(): string {
  const files = ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((name) => `/etc/apt/sources.list.d/${name}`)];
  for (const file of files) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    const match = /^URIs:\s*(\S+\/debian)\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\s/m.exec(text);
    if (match) return match[1];
  }
  return DEFAULT_MIRROR;
}

function listDir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** About SYNTHETIC_ENTRIES entries shaped like a small distribution: 40 directories of 8 subdirectories of files. */
async function syntheticTree(root: string): Promise<void> {
  let made = 0;
  for (let top = 0; made < SYNTHETIC_ENTRIES; top++) {
    for (let sub = 0; sub < 8 && made < SYNTHETIC_ENTRIES; sub++) {
      const dir = join(root, `top${top}`, `sub${sub}`);
      await mkdir(dir, { recursive: true });
      made += 2;
      for (let file = 0; file < 20 && made < SYNTHETIC_ENTRIES; file++, made++) await writeFile(join(dir, `file${file}`), `${top}/${sub}/${file}\n`);
    }
  }
}

/** Step `n`: a handful of changes of the kinds RUN steps make. */
async function runStep(root: string, n: number): Promise<void> {
  const dir = join(root, 'bench-step');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `added-${n}`), `step ${n}\n`);
  await appendFile(join(dir, 'log'), `step ${n}\n`);
  await chmod(join(dir, 'log'), n % 2 === 0 ? 0o644 : 0o600);
  await mkdir(join(dir, `dir-${n}`));
  if (n > 0) await rm(join(dir, `added-${n - 1}`));
}

interface Timing {
  scanMs: number;
  diffMs: number;
  entries: number;
}

/** Runs STEPS steps, timing the scan after each and the diff against the scan before it. */
async function measure(
  changeRoot: string,
  scanRoot: string,
  diff: (before: TreeSnapshot, after: TreeSnapshot) => Promise<LayerEntry[]>,
): Promise<{ timings: Timing[]; scanned: number }> {
  let before = await scanTree(scanRoot);
  const timings: Timing[] = [];
  for (let n = 0; n < STEPS; n++) {
    await runStep(changeRoot, n);
    const start = performance.now();
    const after = await scanTree(scanRoot);
    const scanned = performance.now();
    const entries = await diff(before, after);
    timings.push({ scanMs: scanned - start, diffMs: performance.now() - scanned, entries: entries.length });
    before = after;
  }
  return { timings, scanned: before.size };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

function report(name: string, result: { timings: Timing[]; scanned: number }): void {
  const total = result.timings.map((t) => t.scanMs + t.diffMs);
  const median = percentile(total, 0.5);
  const fmt = (ms: number): string => ms.toFixed(1).padStart(6);
  console.log(
    `${name.padEnd(8)} entries scanned ${String(result.scanned).padStart(5)} | scan ${fmt(percentile(result.timings.map((t) => t.scanMs), 0.5))} ms` +
      ` + diff ${fmt(percentile(result.timings.map((t) => t.diffMs), 0.5))} ms = ${fmt(median)} ms/step median,` +
      ` p90 ${fmt(percentile(total, 0.9))} ms | ${(median / TARGET_MS).toFixed(2)}x the ${TARGET_MS} ms target` +
      ` | layer entries per step ${result.timings[result.timings.length - 1].entries}`,
  );
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-bench-snapshot-'));
  try {
    const debian = debianRootfs();
    const source = debian ?? join(work, 'synthetic');
    if (debian === undefined) await syntheticTree(source);
    console.log(`tree: ${debian ? `Debian bookworm minbase (${debian})` : 'synthetic'}; ${STEPS} steps, each adding, changing, chmod-ing and deleting a few files`);

    const copy = join(work, 'rootfs');
    execFileSync('cp', ['-a', source, copy]);
    report('full', await measure(copy, copy, (before, after) => diffTrees(before, after, copy)));

    if (process.getuid?.() !== 0) {
      console.log('overlay  skipped: mounting overlayfs needs root');
      return;
    }
    const [upper, overlayWork, merged] = ['upper', 'work', 'merged'].map((name) => join(work, name));
    for (const dir of [upper, overlayWork, merged]) await mkdir(dir);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${source},upperdir=${upper},workdir=${overlayWork}`, merged]);
    try {
      report('overlay', await measure(merged, upper, (before, after) => diffOverlayUpper(before, after, upper)));
    } finally {
      execFileSync('umount', [merged]);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
