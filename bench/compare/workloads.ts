/**
 * The four workloads of the comparison. Each has a Dockerfile (the same text for every builder,
 * with the base named by its loopback registry reference) and a build context.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { moduleTreePath, writeModuleTree } from './module-tree.js';

export type WorkloadId = 'w1' | 'w2' | 'w3' | 'w4';
export const WORKLOAD_IDS: readonly WorkloadId[] = ['w1', 'w2', 'w3', 'w4'];

export interface Bases {
  /** Debian bookworm minbase, e.g. `127.0.0.1:PORT/bench/debian:bookworm`. */
  readonly debian: string;
  /** busybox, e.g. `127.0.0.1:PORT/bench/busybox:latest`. */
  readonly busybox: string;
}

export interface Workload {
  readonly id: WorkloadId;
  readonly title: string;
  /** The base image reference of its FROM. */
  readonly base: string;
  readonly dockerfile: string;
  readonly context: string;
  /** Builds reuse the step cache of the builds before them (w4); all others are cold. */
  readonly warm: boolean;
  /** Called before each measured run of a warm workload, so that each run has something to rebuild. */
  readonly beforeRun?: (run: number) => Promise<void>;
}

const TREE_FILES = 20_000;
const TREE_BYTES = 160 * 1024 * 1024;
const TEXT_BYTES = 1_400_000_000;
const RANDOM_BYTES = 64 * 1024 * 1024;
/** The file w4 edits: one source file in the middle of the tree. */
const EDITED_FILE = moduleTreePath(TREE_FILES / 2);

function w1Dockerfile(bases: Bases): string {
  const steps = Array.from({ length: 10 }, (_, i) => `RUN echo step${i + 1} > /step${i + 1}.txt`);
  return [`FROM ${bases.debian}`, ...steps, ''].join('\n');
}

function w2Dockerfile(bases: Bases): string {
  return [`FROM ${bases.busybox}`, 'COPY . /app/', 'RUN find /app -type f | wc -l > /app-files.txt', ''].join('\n');
}

/** Text lines like a log (about 60 bytes each; gzip shrinks them about 24-fold), then random bytes. */
function w3Dockerfile(bases: Bases): string {
  const text = `seq -f 'log line %.0f: the quick brown fox jumps over the lazy dog' 1 30000000 | head -c ${TEXT_BYTES} > /text.log`;
  const random = `head -c ${RANDOM_BYTES} /dev/urandom > /random.bin`;
  return [`FROM ${bases.debian}`, `RUN ${text} && ${random}`, ''].join('\n');
}

/**
 * Writes every Dockerfile and context under `work` (outside the contexts, so that `COPY .` copies
 * only the context) and returns the workloads asked for, in table order.
 */
export async function prepareWorkloads(work: string, bases: Bases, only: readonly WorkloadId[]): Promise<Workload[]> {
  const empty = join(work, 'context-empty');
  await mkdir(empty, { recursive: true });
  const tree = join(work, 'context-tree');
  if (only.includes('w2') || only.includes('w4')) await writeModuleTree(tree, TREE_FILES, TREE_BYTES);
  const all: Array<Omit<Workload, 'dockerfile'> & { text: string }> = [
    { id: 'w1', title: 'w1: 10 × RUN echo stepN > /stepN.txt on Debian bookworm minbase', text: w1Dockerfile(bases), base: bases.debian, context: empty, warm: false },
    { id: 'w2', title: `w2: COPY ${TREE_FILES} files / ${TREE_BYTES / 1024 / 1024} MiB onto busybox, then one RUN`, text: w2Dockerfile(bases), base: bases.busybox, context: tree, warm: false },
    { id: 'w3', title: `w3: RUN writing ${TEXT_BYTES / 1e9} GB of text + ${RANDOM_BYTES / 1024 / 1024} MiB random on Debian`, text: w3Dockerfile(bases), base: bases.debian, context: empty, warm: false },
    {
      id: 'w4',
      title: `w4: w2 again with ${EDITED_FILE} edited, step cache warm`,
      text: w2Dockerfile(bases),
      base: bases.busybox,
      context: tree,
      warm: true,
      beforeRun: (run) => appendFile(join(tree, EDITED_FILE), `\n// edit ${run + 1}\n`),
    },
  ];
  const chosen = all.filter((workload) => only.includes(workload.id));
  const workloads: Workload[] = [];
  for (const { text, ...workload } of chosen) {
    const dockerfile = join(work, 'dockerfiles', workload.id, 'Dockerfile');
    await mkdir(join(work, 'dockerfiles', workload.id), { recursive: true });
    await writeFile(dockerfile, text);
    workloads.push({ ...workload, dockerfile });
  }
  return workloads;
}
