/**
 * The conformance cases: one directory each under test/conformance/cases, holding a Dockerfile, an
 * optional `context/` directory, an optional `case.json` and the golden `expected.txt`.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/repo-root.js';

export interface CaseOptions {
  /** What the case checks, one line. */
  readonly description?: string;
  /** `--build-arg` values; `BASE` is added for a Dockerfile that declares `ARG BASE`. */
  readonly args?: Record<string, string>;
  readonly target?: string;
  /** One platform such as `linux/arm64`; the host's when absent. */
  readonly platform?: string;
  /** Shell commands run (`sh -ec`) in the copied context: symlinks, modes, archives, odd names. */
  readonly setup?: string;
  /**
   * Set when this BuildKit cannot build the case: why, from which part of the Dockerfile reference
   * the golden was written. `reference` names a Dockerfile in the case directory with the same
   * meaning in syntax this BuildKit knows; `--regenerate` builds that one instead. Without it the
   * golden is edited by hand and `--regenerate` leaves it alone.
   */
  readonly handWritten?: { readonly reason: string; readonly reference?: string };
}

export interface ConformanceCase {
  readonly name: string;
  readonly dir: string;
  readonly dockerfile: string;
  readonly options: CaseOptions;
  /** The Dockerfile declares `ARG BASE`: the harness passes the busybox base reference. */
  readonly usesBase: boolean;
}

const KNOWN_OPTIONS = new Set(['description', 'args', 'target', 'platform', 'setup', 'handWritten']);

export function casesDir(): string {
  return join(repoRoot(), 'test', 'conformance', 'cases');
}

export function goldenFile(testCase: ConformanceCase): string {
  return join(testCase.dir, 'expected.txt');
}

/** Every case, sorted by name; a malformed case.json throws naming the file. */
export function loadCases(only?: ReadonlySet<string>): ConformanceCase[] {
  const root = casesDir();
  return readdirSync(root).sort()
    .filter((name) => only === undefined || only.has(name))
    .filter((name) => lstatSync(join(root, name)).isDirectory())
    .map((name) => loadCase(name, join(root, name)));
}

function loadCase(name: string, dir: string): ConformanceCase {
  const jsonFile = join(dir, 'case.json');
  let options: CaseOptions = {};
  if (existsSync(jsonFile)) {
    options = JSON.parse(readFileSync(jsonFile, 'utf8')) as CaseOptions;
    const unknown = Object.keys(options).filter((key) => !KNOWN_OPTIONS.has(key));
    if (unknown.length > 0) throw new Error(`${jsonFile}: unknown keys ${unknown.join(', ')}`);
  }
  const dockerfile = join(dir, 'Dockerfile');
  const text = readFileSync(dockerfile, 'utf8');
  return { name, dir, dockerfile, options, usesBase: /^\s*ARG\s+BASE\b/im.test(text) };
}

/** Build arguments for one build: the case's, plus `BASE` when the case uses the base image. */
export function buildArgs(testCase: ConformanceCase, base: string): Map<string, string> {
  const args = new Map(Object.entries(testCase.options.args ?? {}));
  if (testCase.usesBase) args.set('BASE', base);
  return args;
}

/**
 * Copies the case's context into `dest` with modes a git checkout does not keep reset (files 0644,
 * or 0755 when executable; directories 0755), then runs its setup commands there.
 */
export function prepareContext(testCase: ConformanceCase, dest: string): void {
  const source = join(testCase.dir, 'context');
  mkdirSync(dest, { recursive: true });
  if (existsSync(source)) {
    cpSync(source, dest, { recursive: true, verbatimSymlinks: true });
    normaliseModes(dest);
  }
  chmodSync(dest, 0o755);
  if (testCase.options.setup !== undefined) {
    execFileSync('sh', ['-ec', testCase.options.setup], { cwd: dest, stdio: ['ignore', 'ignore', 'pipe'] });
  }
}

function normaliseModes(dir: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) {
      chmodSync(path, 0o755);
      normaliseModes(path);
    } else if (stats.isFile()) {
      chmodSync(path, (stats.mode & 0o100) !== 0 ? 0o755 : 0o644);
    }
  }
}
