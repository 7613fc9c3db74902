/** Helpers of the cache tests: the layer entries a real COPY selects from a real directory. */
import type { LayerEntry } from '../../../layers/entry.js';
import type { Platform } from '../../../layers/types.js';
import { loadIgnorePatterns, PatternMatcher } from '../../../builder/context/ignore.js';
import { copyEntries } from '../../../builder/exec/copy-entries.js';
import { matchSources, type SourceTree } from '../../../builder/fs/source-tree.js';
import type { CopyStep, RunStep } from '../../../builder/model/plan.js';
import { join } from 'node:path';

export interface CopyOptions {
  /** `context` (files owned by root in the layer, `.dockerignore` applies) or `rootfs` (real owners, as `COPY --from`). */
  readonly scope?: 'context' | 'rootfs';
  readonly sources?: readonly string[];
  readonly dest?: string;
  readonly excludes?: readonly string[];
}

/** The entries `COPY <sources> <dest>/` produces from `root`, as the executor computes them, into an empty rootfs. */
export async function copiedEntries(root: string, options: CopyOptions = {}): Promise<LayerEntry[]> {
  const scope = options.scope ?? 'context';
  const ignore = new PatternMatcher(scope === 'context' ? await loadIgnorePatterns(root, join(root, 'Dockerfile')) : []);
  const tree: SourceTree = { root, scope, label: 'test tree', isIgnored: (p) => ignore.matches(p), canSkipDir: (p) => ignore.canSkipDir(p) };
  const excludes = new PatternMatcher(options.excludes ?? []);
  const selected = [];
  for (const source of options.sources ?? ['.']) {
    for (const match of await matchSources(tree, source)) selected.push({ tree, match });
  }
  return copyEntries(selected, {
    destPath: options.dest ?? 'app',
    destIsDirectory: true,
    parents: false,
    isExcluded: (rel) => excludes.matches(rel),
    existing: async () => undefined,
    now: 0,
  });
}

export const amd64: Platform = { os: 'linux', architecture: 'amd64' };

/** A COPY step as the planner makes it for a Dockerfile at `dockerfile`. */
export function copyStep(dockerfile: string, line: number, overrides: Partial<CopyStep> = {}): CopyStep {
  return {
    kind: 'copy',
    location: { file: dockerfile, startLine: line, endLine: line },
    createdBy: `COPY . /app/`,
    instruction: 'COPY',
    from: { kind: 'context' },
    sources: ['.'],
    sourceContents: [],
    dest: '/app/',
    link: false,
    parents: false,
    excludes: [],
    ...overrides,
  };
}

/** A RUN step as the planner makes it for a Dockerfile at `dockerfile`. */
export function runStep(dockerfile: string, line: number, overrides: Partial<RunStep> = {}): RunStep {
  return {
    kind: 'run',
    location: { file: dockerfile, startLine: line, endLine: line },
    createdBy: 'RUN make',
    args: ['/bin/sh', '-c', 'make'],
    argNames: [],
    shellForm: true,
    heredocs: [],
    env: ['PATH=/usr/bin:/bin', 'VERSION=1'],
    workdir: '/app',
    mounts: [],
    network: 'default',
    security: 'sandbox',
    ...overrides,
  };
}
