import { atSourceLine, TsbuildError } from '../../layers/errors.js';
import type { ContainerConfig } from '../../layers/types.js';
import type { AddInstruction, CommandLine, CopyInstruction, Instruction } from '../frontend/instructions.js';
import { ShellLex } from '../frontend/shell-lex.js';
import { cleanPath, exposedPortKeys, resolveCopyDest, resolveWorkdir, validateStopSignal } from './image-config.js';
import type { CopySource } from '../model/sources.js';
import type { PlannedStep } from '../model/plan.js';
import type { Scope } from './scope.js';
import { checkMountTargets, parseRunMount } from '../frontend/parse-mount.js';
import type { RunMount } from '../model/mounts.js';
import { isUrl } from '../exec/fetch-url.js';
import { isGitSource } from '../exec/git-source.js';

/**
 * A stage part-way through its instructions. It belongs to the one stage being planned and each
 * dispatch changes it in place, so that an instruction costs its own size and not the size of
 * everything before it (10,000 LABELs plan in linear time). `config` and the maps in it are the
 * stage's own copies, never shared with its base.
 */
export interface StageState {
  readonly scope: Scope;
  readonly config: ContainerConfig;
  /** CMD was set in this stage, so a later ENTRYPOINT keeps it. */
  cmdSet: boolean;
  /** An ENV ran, so the config's Env must be taken from the scope when the stage ends. */
  envChanged: boolean;
  author?: string;
  readonly steps: PlannedStep[];
}

export interface DispatchContext {
  readonly lex: ShellLex;
  /** Expands heredoc bodies, where quotes are plain text. */
  readonly heredocLex: ShellLex;
  readonly buildArgs: ReadonlyMap<string, string>;
  /** Values of the global ARGs, which `ARG name` without a default inherits. */
  readonly globalArgs: ReadonlyMap<string, string>;
  /** Build args some ARG declared, for the unused `--build-arg` warning. */
  readonly consumedArgs: Set<string>;
  readonly resolveCopyFrom: (from: string) => CopySource;
}

export const defaultShell = ['/bin/sh', '-c'];

/** Applies one instruction to a stage, turning any failure into an error at its line. */
export function dispatch(state: StageState, instruction: Instruction, ctx: DispatchContext): void {
  const { file, startLine } = instruction.location;
  atSourceLine(file, startLine, () => dispatchInstruction(state, instruction, ctx));
}

function dispatchInstruction(state: StageState, ins: Instruction, ctx: DispatchContext): void {
  const vars = state.scope.expansionVariables();
  const expand = (word: string): string => ctx.lex.processWord(word, vars);
  const meta = (createdBy: string): void => {
    state.steps.push({ kind: 'metadata', location: ins.location, createdBy });
  };
  const c = state.config;
  switch (ins.kind) {
    case 'ARG': {
      const shown: string[] = [];
      for (const def of ins.args) {
        // A name can hold variables (`ARG ${name}=x`), expanded as dockerd's BuildKit does.
        const key = expand(def.key);
        if (key === '') throw new TsbuildError('EXPANSION', 'ARG names can not be blank');
        ctx.consumedArgs.add(key);
        const value = ctx.buildArgs.get(key) ?? (def.value !== undefined ? expand(def.value) : ctx.globalArgs.get(key));
        if (value !== undefined) state.scope.setArg(key, value);
        shown.push(value !== undefined ? `${key}=${value}` : key);
      }
      return meta(`ARG ${shown.join(' ')}`);
    }
    case 'ENV': {
      // Every pair expands with the variables from before the instruction.
      const pairs = ins.env.map((pair) => [expand(pair.key), expand(pair.value)] as const);
      if (pairs.some(([key]) => key === '')) throw new TsbuildError('BAD_ENV', 'ENV names can not be blank');
      for (const [key, value] of pairs) state.scope.setEnv(key, value);
      state.envChanged = true;
      return meta(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    case 'LABEL': {
      const pairs = ins.labels.map((pair) => [expand(pair.key), expand(pair.value)] as const);
      const labels = (c.Labels ??= {});
      for (const [key, value] of pairs) labels[key] = value;
      return meta(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    case 'MAINTAINER':
      state.author = ins.maintainer;
      return meta(ins.original);
    case 'EXPOSE': {
      const keys = ins.ports.flatMap((word) => exposedPortKeys(expand(word)));
      const ports = (c.ExposedPorts ??= {});
      for (const key of keys) ports[key] = {};
      return meta(`EXPOSE ${keys.join(' ')}`);
    }
    case 'VOLUME': {
      const added = ins.volumes.map((word) => expand(word).trim());
      if (added.includes('')) throw new TsbuildError('BAD_VOLUME', 'VOLUME specified can not be an empty string');
      const volumes = (c.Volumes ??= {});
      for (const volume of added) volumes[volume] = {};
      return meta(`VOLUME ${JSON.stringify(added)}`);
    }
    case 'USER':
      c.User = expand(ins.user);
      return meta(`USER ${c.User}`);
    case 'STOPSIGNAL':
      c.StopSignal = validateStopSignal(expand(ins.signal));
      return meta(`STOPSIGNAL ${c.StopSignal}`);
    case 'SHELL':
      c.Shell = [...ins.shell];
      return meta(ins.original);
    case 'ONBUILD':
      // BuildKit records a trigger in the config only: no history entry.
      (c.OnBuild ??= []).push(ins.expression);
      return;
    case 'HEALTHCHECK': {
      const h = ins.health;
      const health = {
        Test: [...h.test],
        ...(h.interval ? { Interval: h.interval } : {}),
        ...(h.timeout ? { Timeout: h.timeout } : {}),
        ...(h.startPeriod ? { StartPeriod: h.startPeriod } : {}),
        ...(h.startInterval ? { StartInterval: h.startInterval } : {}),
        ...(h.retries ? { Retries: h.retries } : {}),
      };
      c.Healthcheck = health;
      return meta(ins.original);
    }
    case 'CMD':
      c.Cmd = commandArgs(ins.command, c);
      // BuildKit marks every CMD's arguments as escaped (a Docker image field, for Windows).
      c.ArgsEscaped = true;
      state.cmdSet = true;
      return meta(ins.original);
    case 'ENTRYPOINT':
      c.Entrypoint = commandArgs(ins.command, c);
      if (!state.cmdSet) c.Cmd = null;
      return meta(ins.original);
    case 'WORKDIR': {
      // As in BuildKit, every WORKDIR but `/` makes a layer, empty when the directory exists.
      c.WorkingDir = resolveWorkdir(c.WorkingDir, expand(ins.path));
      const path = cleanPath(c.WorkingDir);
      if (path === '/') return meta(`WORKDIR ${c.WorkingDir}`);
      state.steps.push({ kind: 'workdir', location: ins.location, createdBy: `WORKDIR ${c.WorkingDir}`, path, ...(c.User ? { user: c.User } : {}) });
      return;
    }
    case 'COPY':
    case 'ADD':
      state.steps.push(copyStep(ins, state, ctx, expand));
      return;
    case 'RUN': {
      const workdir = cleanPath(c.WorkingDir || '/');
      const resolveFrom = (name: string): CopySource => ctx.resolveCopyFrom(copyFromName(name, ctx.lex));
      const mounts: RunMount[] = [];
      for (const raw of ins.mounts) mounts.push(parseRunMount(raw, { expand, workdir, resolveFrom, sshIndex: mounts.filter((m) => m.type === 'ssh').length }));
      checkMountTargets(mounts);
      const step: PlannedStep = {
        kind: 'run',
        location: ins.location,
        createdBy: `RUN ${commandArgs(ins.command, c).join(' ')}`,
        args: commandArgs(ins.command, c),
        shellForm: ins.command.prependShell,
        heredocs: ins.heredocs,
        env: state.scope.runEnvList(),
        argNames: state.scope.argNames(),
        ...(c.User ? { user: c.User } : {}),
        workdir,
        mounts,
        network: ins.network,
        security: ins.security,
      };
      state.steps.push(step);
      return;
    }
    case 'FROM':
      throw new TsbuildError('INTERNAL', 'FROM inside a stage');
  }
}

/** The stage or context `COPY --from` names. As in BuildKit, it is taken literally: no variables. */
export function copyFromName(from: string, lex: ShellLex): string {
  if (lex.processWord(from, new Map()) !== from) {
    throw new TsbuildError(
      'BAD_COPY_FROM',
      'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    );
  }
  return from;
}

/** Exec form as written; shell form run through the stage's SHELL. */
function commandArgs(command: CommandLine, config: ContainerConfig): string[] {
  return command.prependShell ? [...(config.Shell ?? defaultShell), ...command.args] : [...command.args];
}

function copyStep(ins: CopyInstruction | AddInstruction, state: StageState, ctx: DispatchContext, expand: (w: string) => string): PlannedStep {
  const vars = state.scope.expansionVariables();
  const from = ins.kind === 'COPY' && ins.from !== undefined ? ctx.resolveCopyFrom(copyFromName(ins.from, ctx.lex)) : { kind: 'context' as const };
  const sourceContents = ins.sourceContents.map((s) => (s.expand ? { ...s, data: ctx.heredocLex.processWord(s.data, vars) } : s));
  const chown = ins.chown !== undefined ? expand(ins.chown) : undefined;
  const chmod = ins.chmod !== undefined ? expand(ins.chmod) : undefined;
  const checksum = ins.kind === 'ADD' && ins.checksum !== undefined ? expand(ins.checksum) : undefined;
  const sources = ins.sources.map(expand);
  const gitSources = ins.kind === 'ADD' ? sources.filter(isGitSource) : [];
  if (checksum !== undefined) checkChecksum(checksum, sources, gitSources, ins.sourceContents.length > 0);
  const keepGitDir = ins.kind === 'ADD' ? ins.keepGitDir : undefined;
  if (keepGitDir !== undefined && gitSources.length === 0) throw new TsbuildError('BAD_FLAG', '--keep-git-dir applies only to git sources');
  return {
    kind: 'copy',
    instruction: ins.kind,
    location: ins.location,
    createdBy: ins.original,
    from,
    sources,
    sourceContents,
    dest: resolveCopyDest(state.config.WorkingDir, expand(ins.dest)),
    ...(chown !== undefined ? { chown } : {}),
    ...(chmod !== undefined ? { chmod } : {}),
    link: ins.link,
    parents: ins.kind === 'COPY' ? ins.parents : false,
    excludes: ins.excludes.map(expand),
    ...(checksum !== undefined ? { checksum } : {}),
    ...(ins.kind === 'ADD' && ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
    ...(keepGitDir !== undefined ? { keepGitDir } : {}),
  };
}

/** `--checksum` is a digest for HTTP(S) downloads and a commit for a git source, never for anything else. */
function checkChecksum(checksum: string, sources: readonly string[], gitSources: readonly string[], heredocs: boolean): void {
  if (gitSources.length > 0) {
    if (sources.length > 1 || heredocs) throw new TsbuildError('BAD_CHECKSUM', 'checksum can\'t be specified for several sources with a git repository');
    if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(checksum)) throw new TsbuildError('BAD_CHECKSUM', `checksum of a git source must be a full commit hash, not ${checksum}`);
    return;
  }
  if (heredocs || !sources.every(isUrl)) {
    throw new TsbuildError('BAD_CHECKSUM', 'checksum can\'t be specified for non-HTTP(S) sources');
  }
}
