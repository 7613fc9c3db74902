/**
 * Why a step missed the cache: the differences between the named inputs it had last time (see
 * `describeStepInputs`) and the ones it has now. A hit is never explained here.
 */
import path from 'node:path';
import type { StepInputs } from './cache-key.js';

export interface MissExplanation {
  /** One line for the progress output, e.g. `ARG VERSION changed ("1" → "2")` or `3 files added under src/`. */
  readonly summary: string;
  /** Every difference, one line each, for `--explain-cache`. */
  readonly differences: readonly string[];
}

/** Names whose values are never shown. */
const SECRET_NAME = /TOKEN|PASSWORD|PASSWD|SECRET|KEY|CREDENTIAL/i;
/** The longest value shown; longer ones are cut. */
const MAX_SHOWN = 60;

/** Explains a miss given the step's previous inputs (undefined when it never ran) and its current ones. */
export function explainMiss(previous: StepInputs | undefined, current: StepInputs): MissExplanation {
  if (previous === undefined) return single('first build of this step');
  const reasons: Reason[] = [...chainReasons(previous, current), ...instructionReasons(previous, current)];
  const platform = changed(previous, current, 'platform');
  if (platform) reasons.push(one(`platform changed (${platform[0] ?? 'none'} → ${platform[1] ?? 'none'})`));
  reasons.push(...variableReasons(previous, current), ...fileReasons(previous, current));
  const version = changed(previous, current, 'version');
  if (version) reasons.unshift(one(`cache key version changed (${version[0] ?? 'none'} → ${version[1] ?? 'none'})`));
  if (reasons.length === 0) return single('inputs unchanged, but no cached result was found');
  const more = reasons.length - 1;
  return { summary: more > 0 ? `${reasons[0]!.summary} (+${more} more)` : reasons[0]!.summary, differences: reasons.flatMap((r) => r.details) };
}

/** One cause of a miss: its summary, and its lines in the full list (several for a group of files). */
interface Reason {
  readonly summary: string;
  readonly details: readonly string[];
}

const one = (line: string): Reason => ({ summary: line, details: [line] });
const single = (line: string): MissExplanation => ({ summary: line, differences: [line] });

/** The old and new value of `name` when they differ (undefined for absent). */
function changed(previous: StepInputs, current: StepInputs, name: string): [string | undefined, string | undefined] | undefined {
  const before = own(previous, name);
  const after = own(current, name);
  return before === after ? undefined : [before, after];
}

function own(inputs: StepInputs, name: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(inputs, name) ? inputs[name] : undefined;
}

/** What the step builds on: a stage's base for its first step, else the previous step. */
function chainReasons(previous: StepInputs, current: StepInputs): Reason[] {
  const base = changed(previous, current, 'base');
  const parent = changed(previous, current, 'parent');
  if (!base && !parent) return [];
  const [oldBase, newBase] = [own(previous, 'base'), own(current, 'base')];
  if (oldBase !== undefined && newBase === undefined) return [one('a step was added before this one')];
  if (oldBase === undefined && newBase !== undefined) return [one('the step before this one was removed')];
  if (!base) return [one('parent step missed')];
  const [oldKind, newKind] = [oldBase!.split(' ')[0], newBase!.split(' ')[0]];
  if (oldKind === 'image' && newKind === 'image') return [one(`base image changed (${shortBase(oldBase!)} → ${shortBase(newBase!)})`)];
  if (oldKind === 'stage' && newKind === 'stage') return [one('base stage missed')];
  return [one(`base changed (${shortBase(oldBase!)} → ${shortBase(newBase!)})`)];
}

/** `image sha256:0123456789abcdef…` → `sha256:0123456789ab…`; `scratch` and stages stay readable. */
function shortBase(base: string): string {
  const [kind, digest] = base.split(' ');
  if (digest === undefined) return base;
  const short = digest.length > 'sha256:'.length + 12 ? `${digest.slice(0, 'sha256:'.length + 12)}…` : digest;
  return kind === 'image' ? short : `${kind} ${short}`;
}

/** The instruction and its options, all summed up as `instruction changed`. */
function instructionReasons(previous: StepInputs, current: StepInputs): Reason[] {
  const kind = changed(previous, current, 'instruction');
  if (kind) return [{ summary: 'instruction changed', details: [`instruction changed (${kind[0] ?? 'none'} → ${kind[1] ?? 'none'})`] }];
  const details = unionNames(previous, current, 'step:').flatMap((name) => {
    const values = changed(previous, current, name);
    return values ? [`instruction changed: ${name.slice('step:'.length)} ${shown(values[0])} → ${shown(values[1])}`] : [];
  });
  return details.length > 0 ? [{ summary: 'instruction changed', details }] : [];
}

/** ENV and ARG values, shown unless the name looks like it holds a secret. */
function variableReasons(previous: StepInputs, current: StepInputs): Reason[] {
  const names = [...unionNames(previous, current, 'env:'), ...unionNames(previous, current, 'arg:')];
  return names.flatMap((name) => {
    const values = changed(previous, current, name);
    if (!values) return [];
    const [kind, variable] = [name.slice(0, 3).toUpperCase(), name.slice(4)];
    const [before, after] = values;
    const hide = SECRET_NAME.test(variable);
    const what = `${kind} ${variable}`;
    if (before === undefined) return [one(hide ? `${what} added` : `${what} added (${quoted(after!)})`)];
    if (after === undefined) return [one(hide ? `${what} removed` : `${what} removed (was ${quoted(before)})`)];
    return [one(hide ? `${what} changed` : `${what} changed (${quoted(before)} → ${quoted(after)})`)];
  });
}

/** Files of a COPY/ADD, one line each in the details and grouped in the summary. */
function fileReasons(previous: StepInputs, current: StepInputs): Reason[] {
  const groups: Record<'changed' | 'added' | 'removed', string[]> = { changed: [], added: [], removed: [] };
  for (const name of unionNames(previous, current, 'file:')) {
    const values = changed(previous, current, name);
    if (!values) continue;
    const file = name.slice('file:'.length);
    groups[values[0] === undefined ? 'added' : values[1] === undefined ? 'removed' : 'changed'].push(file);
  }
  return (['changed', 'added', 'removed'] as const).flatMap((how) => {
    const files = groups[how];
    if (files.length === 0) return [];
    const details = files.map((f) => `file ${f} ${how}`);
    if (files.length === 1) return [{ summary: details[0]!, details }];
    const dir = commonDir(files);
    return [{ summary: `${files.length} files ${how}${dir === '' ? '' : ` under ${dir}/`}`, details }];
  });
}

/** The deepest directory holding every one of `files` ('' for the root). */
function commonDir(files: readonly string[]): string {
  let common = path.posix.dirname(files[0]!).split('/');
  for (const file of files.slice(1)) {
    const parts = path.posix.dirname(file).split('/');
    let n = 0;
    while (n < common.length && n < parts.length && common[n] === parts[n]) n++;
    common = common.slice(0, n);
  }
  const dir = common.join('/');
  return dir === '.' ? '' : dir;
}

/** Names with `prefix` in either set of inputs, sorted. */
function unionNames(previous: StepInputs, current: StepInputs, prefix: string): string[] {
  const names = new Set([...Object.keys(previous), ...Object.keys(current)].filter((n) => n.startsWith(prefix)));
  return [...names].sort();
}

function shown(value: string | undefined): string {
  if (value === undefined) return 'none';
  return value.length > MAX_SHOWN ? `${value.slice(0, MAX_SHOWN)}…` : value;
}

function quoted(value: string): string {
  const text = JSON.stringify(value);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…"` : text;
}
