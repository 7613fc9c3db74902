/**
 * The declared structure, checked on the source: no import cycles; imports run only down the
 * order cli -> builder's public API (builder/index.ts) -> builder internals -> {registry-client,
 * layers}, with builder/model importing nothing else of builder/, registry-client only layers,
 * and layers nothing of ours; and no source file over 400 lines.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repoRoot } from '../support/repo-root.js';
import { importCycles, readSources, type SourceFile } from './import-graph.js';

const MAX_LINES = 400;

/** The folders of the product: what ships, and the tools built on it. */
const sourceDirs = ['cli', 'builder', 'layers', 'registry-client', 'bench', 'examples'];

type Part = 'cli' | 'api' | 'model' | 'builder' | 'registry-client' | 'layers';

/** What each part may import, itself included. bench and examples are outside the order. */
const allowed: Readonly<Record<Part, readonly Part[]>> = {
  cli: ['cli', 'api'],
  api: ['builder', 'model', 'registry-client', 'layers'],
  builder: ['builder', 'model', 'registry-client', 'layers'],
  model: ['model', 'layers'],
  'registry-client': ['registry-client', 'layers'],
  layers: ['layers'],
};

function partOf(file: string): Part | undefined {
  if (file === 'builder/index.ts') return 'api';
  if (file.startsWith('builder/model/')) return 'model';
  const top = file.split('/')[0]!;
  return top === 'cli' || top === 'builder' || top === 'registry-client' || top === 'layers' ? top : undefined;
}

/** Every import of `files` that the order forbids, as `from -> to`. */
function forbiddenImports(files: ReadonlyMap<string, SourceFile>): string[] {
  const found: string[] = [];
  for (const file of files.values()) {
    const from = partOf(file.path);
    if (from === undefined) continue;
    for (const target of file.imports) {
      const to = partOf(target);
      if (to === undefined || !allowed[from].includes(to)) found.push(`${file.path} -> ${target} (${from} may import only ${allowed[from].join(', ')})`);
    }
  }
  return found;
}

const sources = readSources(repoRoot(), sourceDirs);

test('the graph is read from the source, with dynamic, type-only and re-export imports', () => {
  assert.ok(sources.get('cli/run.ts')?.imports.includes('cli/library.ts'), 'the lazy import of the library');
  assert.ok(sources.get('builder/index.ts')?.imports.includes('builder/build.ts'), 'a re-export');
  assert.ok(sources.get('builder/model/plan.ts')?.imports.includes('builder/model/mounts.ts'), 'a type-only import');
});

test('the checks find a cycle and an import against the order', () => {
  const file = (path: string, imports: string[]): [string, SourceFile] => [path, { path, lines: 1, imports }];
  const made = new Map([file('layers/a.ts', ['layers/b.ts']), file('layers/b.ts', ['layers/c.ts']), file('layers/c.ts', ['layers/a.ts', 'builder/x.ts']), file('builder/x.ts', [])]);
  assert.deepEqual(importCycles(made), [['layers/a.ts', 'layers/b.ts', 'layers/c.ts']]);
  assert.deepEqual(forbiddenImports(made), ['layers/c.ts -> builder/x.ts (layers may import only layers)']);
});

test('no import cycles', () => {
  assert.deepEqual(importCycles(sources), []);
});

test('every import runs down the declared order', () => {
  assert.deepEqual(forbiddenImports(sources), []);
});

test(`no source file is over ${MAX_LINES} lines`, () => {
  const long = [...sources.values()].filter((f) => f.lines > MAX_LINES).map((f) => `${f.path}: ${f.lines} lines`);
  assert.deepEqual(long, []);
});
