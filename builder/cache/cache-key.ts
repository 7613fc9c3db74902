/**
 * Build cache keys: the SHA-256 of the canonical JSON of everything that decides what a step
 * produces, and nothing else (no mtimes, no absolute context paths, no Dockerfile location).
 *
 * Only steps that change the filesystem (RUN, COPY/ADD, WORKDIR) have keys and form the chain of
 * parents. Metadata instructions change only the image config, which the plan already holds in
 * full; what they mean to a later step reaches its key through that step's own expanded inputs
 * (a RUN's environment, user and workdir; a COPY's destination). So an ARG or LABEL that a step
 * cannot see never invalidates it.
 */
import { sha256Digest } from '../../layers/digest.js';
import { canonicalJson, type Json } from '../../layers/canonical-json.js';
import { TsbuildError } from '../../layers/errors.js';
import type { Digest, Platform } from '../../layers/types.js';
import type { CopyStep, RunStep, WorkdirStep } from '../model/plan.js';
import type { RunMount } from '../model/mounts.js';
import type { ContentChecksum } from './content-checksum.js';

/** Bumped whenever what a key covers, or how, changes: old entries then simply stop matching. */
export const CACHE_KEY_VERSION = 1;

/** A step that changes the filesystem, and so has a cache key. */
export type CacheableStep = RunStep | CopyStep | WorkdirStep;

/** What a step builds on. */
export type StepParent =
  /** First step of a stage `FROM scratch`. */
  | { readonly kind: 'scratch' }
  /** First step of a stage on an image: its manifest digest. */
  | { readonly kind: 'image'; readonly digest: Digest }
  /** First step of a stage on another stage: the key of that stage's last keyed step. */
  | { readonly kind: 'stage'; readonly key: Digest }
  /** Any later step: the key of the previous keyed step of the same stage. */
  | { readonly kind: 'step'; readonly key: Digest };

export interface StepKeyInput {
  readonly parent: StepParent;
  readonly step: CacheableStep;
  readonly platform: Platform;
  /**
   * Required for COPY/ADD: the checksum of the entries it produces (see content-checksum.ts). For a
   * RUN with bind mounts: the checksum of what they bind.
   */
  readonly content?: ContentChecksum;
  /**
   * Names among a RUN's variables whose value comes from an ARG rather than ENV. Used only to
   * label them in explanations; the key is the same either way.
   */
  readonly argNames?: ReadonlySet<string>;
}

/** The cache key of a step. */
export function cacheKey(input: StepKeyInput): Digest {
  return sha256Digest(canonicalJson(keyMaterial(input)));
}

/**
 * The named inputs of a key, flat, for explaining a miss: `version`, `base` (first step of a stage)
 * or `parent`, `instruction`, `step:<option>`, `platform`, `env:<NAME>`, `arg:<NAME>` and
 * `file:<path>` (each file's own checksum). Every part of the key appears here.
 */
export function describeStepInputs(input: StepKeyInput): StepInputs {
  const m = keyMaterial(input);
  const inputs: Record<string, string> = { version: String(m.v) };
  if (input.parent.kind === 'step') inputs['parent'] = input.parent.key;
  else inputs['base'] = describeBase(input.parent);
  const { kind, ...options } = m.step;
  inputs['instruction'] = kind;
  for (const [name, value] of Object.entries(options)) inputs[`step:${name}`] = canonicalJson(value);
  inputs['platform'] = describePlatform(input.platform);
  for (const [name, value] of Object.entries(m.env)) inputs[`${input.argNames?.has(name) ? 'arg' : 'env'}:${name}`] = value;
  for (const [path, digest] of input.content?.files ?? []) inputs[`file:${path}`] = digest;
  return inputs;
}

/** Named inputs of a step, as `describeStepInputs` returns them; plain strings, so they store as JSON. */
export type StepInputs = Readonly<Record<string, string>>;

/** How `describeStepInputs` writes a base: `scratch`, `image sha256:…` or `stage sha256:…`. */
function describeBase(parent: Exclude<StepParent, { kind: 'step' }>): string {
  switch (parent.kind) {
    case 'scratch':
      return 'scratch';
    case 'image':
      return `image ${parent.digest}`;
    case 'stage':
      return `stage ${parent.key}`;
  }
}

function describePlatform(p: Platform): string {
  const name = [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
  const extra = [...(p['os.version'] ? [`os.version=${p['os.version']}`] : []), ...(p['os.features']?.length ? [`os.features=${p['os.features'].join(',')}`] : [])];
  return [name, ...extra].join(' ');
}

interface KeyMaterial {
  readonly v: number;
  readonly parent: Json;
  readonly step: { readonly kind: string } & Record<string, Json>;
  readonly platform: Json;
  /** A RUN's variables (ENV and ARG alike); empty for other steps, whose words are already expanded. */
  readonly env: Record<string, string>;
  readonly content: string | null;
}

function keyMaterial(input: StepKeyInput): KeyMaterial {
  const { step } = input;
  if (step.kind === 'copy' && input.content === undefined) {
    throw new TsbuildError('INTERNAL', `the cache key of ${step.instruction} needs the checksum of its contents`);
  }
  return {
    v: CACHE_KEY_VERSION,
    parent: input.parent.kind === 'scratch' ? { kind: 'scratch' } : input.parent.kind === 'image' ? { kind: 'image', digest: input.parent.digest } : { kind: input.parent.kind, key: input.parent.key },
    step: normalisedStep(step),
    platform: normalisedPlatform(input.platform),
    env: step.kind === 'run' ? envRecord(step.env) : {},
    content: input.content?.digest ?? null,
  };
}

/**
 * A step's kind and expanded parameters: never its source location or `created_by`, and for
 * COPY/ADD never the source paths or `--from` (the content checksum stands for what they select).
 * Absent options are null, so that every option is always present.
 */
function normalisedStep(step: CacheableStep): KeyMaterial['step'] {
  switch (step.kind) {
    case 'run':
      return {
        kind: 'RUN',
        args: [...step.args],
        shellForm: step.shellForm,
        heredocs: step.heredocs.map((h) => ({ name: h.name, content: h.content, expand: h.expand, chomp: h.chomp, fileDescriptor: h.fileDescriptor })),
        user: step.user ?? null,
        workdir: step.workdir,
        mounts: step.mounts.map(normalisedMount),
        network: step.network,
        security: step.security,
      };
    case 'copy':
      return {
        kind: step.instruction,
        dest: step.dest,
        chown: step.chown ?? null,
        chmod: step.chmod ?? null,
        link: step.link,
        parents: step.parents,
        excludes: [...step.excludes],
        checksum: step.checksum ?? null,
        unpack: step.unpack ?? null,
        // Only when on (off is the default), so that keys made before git sources existed still match.
        ...(step.keepGitDir ? { keepGitDir: true } : {}),
      };
    case 'workdir':
      return { kind: 'WORKDIR', path: step.path, user: step.user ?? null };
  }
}

/**
 * A mount's options. A bind mount's `from` is left out like COPY's (the content checksum stands
 * for what it binds); a secret's content never enters a key.
 */
function normalisedMount(mount: RunMount): Json {
  switch (mount.type) {
    case 'bind':
      return { type: mount.type, target: mount.target, source: mount.source, readwrite: mount.readwrite };
    case 'cache':
      return { type: mount.type, target: mount.target, id: mount.id, sharing: mount.sharing, readonly: mount.readonly, mode: mount.mode, uid: mount.uid, gid: mount.gid };
    case 'tmpfs':
      return { type: mount.type, target: mount.target };
    case 'secret':
      return { type: mount.type, id: mount.id, target: mount.target ?? null, env: mount.env ?? null, required: mount.required, mode: mount.mode, uid: mount.uid, gid: mount.gid };
    case 'ssh':
      return { type: mount.type, id: mount.id, target: mount.target, required: mount.required, mode: mount.mode, uid: mount.uid, gid: mount.gid };
  }
}

function normalisedPlatform(p: Platform): Json {
  return {
    os: p.os,
    architecture: p.architecture,
    variant: p.variant ?? null,
    'os.version': p['os.version'] ?? null,
    'os.features': p['os.features'] ? [...p['os.features']] : [],
  };
}

/** `KEY=value` pairs as a record; a later pair of the same name wins, as in a process environment list read in order. */
function envRecord(env: readonly string[]): Record<string, string> {
  const record: Record<string, string> = Object.create(null) as Record<string, string>; // no prototype: `__proto__` is a name like any other
  for (const pair of env) {
    const eq = pair.indexOf('=');
    if (eq > 0) record[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return record;
}
