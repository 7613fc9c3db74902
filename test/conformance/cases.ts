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
  /** The Dockerfile's text, to find which base arguments it declares. */
  readonly text: string;
}

/** The busybox base, as the value of `ARG BASE` (OCI media types) and of `ARG BASE_DOCKER` (Docker media types). */
export interface BaseReferences {
  readonly BASE: string;
  readonly BASE_DOCKER: string;
}

const KNOWN_OPTIONS = new Set(['description', 'args', 'target', 'platform', 'setup', 'handWritten']);

export function casesDir(): string {
  return join(repoRoot(), 'test', 'conformance', 'cases');
}

export function goldenFile(testCase: ConformanceCase): string {
  return join(testCase.dir, 'expected.txt');
}

/** Every case (or those named in `only`), sorted by name; a malformed case.json or an unknown name throws. */
export function loadCases(only?: ReadonlySet<string>): ConformanceCase[] {
  const root = casesDir();
  const unknown = [...(only ?? [])].filter((name) => !existsSync(join(root, name, 'Dockerfile')));
  if (unknown.length > 0) throw new Error(`no such case: ${unknown.join(', ')}`);
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
  return { name, dir, dockerfile, options, text };
}

/** Build arguments for one build: the case's, plus each base argument its Dockerfile declares. */
export function buildArgs(testCase: ConformanceCase, bases: BaseReferences): Map<string, string> {
  const args = new Map(Object.entries(testCase.options.args ?? {}));
  for (const [name, reference] of Object.entries(bases)) {
    if (new RegExp(`^\\s*ARG\\s+${name}\\s*$`, 'm').test(testCase.text)) args.set(name, reference);
  }
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
