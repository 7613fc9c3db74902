import { atSourceLine, TsbuildError } from '../../layers/errors.js';
import type { ContainerConfig, Platform } from '../../layers/types.js';
import type { FromInstruction, Instruction, ParsedDockerfile } from '../frontend/instructions.js';
import { parseDockerfile } from '../frontend/parse.js';
import { ExpansionBudget, ShellLex } from '../frontend/shell-lex.js';
import type { NamedContext } from './build-contexts.js';
import { copyFromName, dispatch, type DispatchContext, type StageState } from './dispatch.js';
import type { BuildPlan, PlannedStage, PlatformPlan, StageBase } from '../model/plan.js';
import type { CopySource, ResolvedImage } from '../model/sources.js';
import { parsePlatform, platformArgs } from './platform.js';
import { Scope } from './scope.js';
import { mountFrom } from '../frontend/parse-mount.js';
import { findStage, isImageReference, splitStages, targetIndex, unknownSourceError, type StageLayout, type StageSource } from './stages.js';

export interface PlanOptions {
  readonly buildArgs: ReadonlyMap<string, string>;
  readonly target?: string;
  readonly buildPlatform: Platform;
  readonly platforms: readonly Platform[];
  readonly buildContexts: ReadonlyMap<string, NamedContext>;
  /** Pulls an image named by FROM or COPY --from that is neither a stage nor a build context. */
  readonly resolveRegistryImage: (reference: string, platform: Platform) => Promise<ResolvedImage>;
  /** Reads a base image out of an OCI layout build context for a platform. */
  readonly resolveImage: (context: Extract<NamedContext, { kind: 'oci-layout' }>, platform: Platform) => Promise<ResolvedImage>;
}

/**
 * Turns a parsed Dockerfile into a build plan: for each target platform, the stages the target
 * needs, with bases resolved, every word expanded and the image config each stage ends with.
 */
export async function createPlan(parsed: ParsedDockerfile, dockerfile: string, options: PlanOptions): Promise<BuildPlan> {
  const layout = splitStages(parsed);
  const budget = new ExpansionBudget();
  const lex = new ShellLex(parsed.escapeToken, { budget });
  const consumedArgs = new Set<string>();
  const platforms: PlatformPlan[] = [];
  for (const platform of options.platforms) {
    const globalArgs = new Map(platformArgs(options.buildPlatform, platform));
    for (const arg of layout.globalArgs) {
      for (const def of arg.args) {
        consumedArgs.add(def.key);
        const value = options.buildArgs.get(def.key) ?? (def.value !== undefined ? lex.processWord(def.value, globalArgs) : undefined);
        if (value !== undefined) globalArgs.set(def.key, value);
      }
    }
    const planner = new PlatformPlanner(layout, { lex, budget, globalArgs, consumedArgs, platform, options });
    platforms.push(await planner.plan(targetIndex(layout, options.target)));
  }
  const notes: string[] = [];
  if (parsed.directives.syntax) notes.push(`ignoring "# syntax=${parsed.directives.syntax}": tsbuild has its own Dockerfile frontend`);
  const unused = [...options.buildArgs.keys()].filter((k) => !consumedArgs.has(k)).sort();
  if (unused.length > 0) notes.push(`one or more build-args [${unused.join(' ')}] were not consumed`);
  return { dockerfile, notes, platforms };
}

interface PlannerContext {
  readonly lex: ShellLex;
  readonly budget: ExpansionBudget;
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly consumedArgs: Set<string>;
  readonly platform: Platform;
  readonly options: PlanOptions;
}

class PlatformPlanner {
  private readonly planned = new Map<number, PlannedStage>();
  /** Each planned stage's final variables: a stage built on it inherits its ARGs too. */
  private readonly scopes = new Map<number, Scope>();

  private readonly stages: readonly StageSource[];

  constructor(
    private readonly layout: StageLayout,
    private readonly ctx: PlannerContext,
  ) {
    this.stages = layout.stages;
  }

  async plan(target: number): Promise<PlatformPlan> {
    // As in BuildKit, every FROM must expand to a name and a valid platform, and no COPY --from
    // (or RUN --mount from=) may use variables, in needed stages or not.
    for (const stage of this.stages) {
      const from = this.expandFrom(stage.from);
      if (from.platform !== undefined) atInstruction(stage.from, () => parsePlatform(from.platform!));
      for (const ins of stage.instructions) {
        for (const name of atInstruction(ins, () => sourceNames(ins))) atInstruction(ins, () => copyFromName(name, this.ctx.lex));
      }
    }
    const needed = this.neededStages(target);
    for (const stage of this.stages) {
      if (needed.has(stage.index)) this.planned.set(stage.index, await this.planStage(stage));
    }
    return { platform: this.ctx.platform, stages: [...this.planned.values()], targetIndex: target };
  }

  /**
   * The target and every stage it depends on through FROM, COPY --from or RUN --mount from=,
   * found with a work list rather than recursion, so that a chain of any length fits the stack.
   */
  private neededStages(target: number): Set<number> {
    const needed = new Set<number>([target]);
    const pending = [target];
    for (let index = pending.pop(); index !== undefined; index = pending.pop()) {
      const stage = this.stages[index]!;
      const names = [this.expandFrom(stage.from).image, ...stage.instructions.flatMap(sourceNames)];
      for (const name of names) {
        const source = findStage(this.layout, name, index);
        if (source && !needed.has(source.index)) {
          needed.add(source.index);
          pending.push(source.index);
        }
      }
    }
    return needed;
  }

  private expandFrom(from: FromInstruction): { image: string; platform?: string } {
    return atInstruction(from, () => {
      const image = this.ctx.lex.processWord(from.image, this.ctx.globalArgs);
      if (image.trim() === '') throw new TsbuildError('BAD_FROM', `base name (${from.image}) should not be blank`);
      const platform = from.platform !== undefined ? this.ctx.lex.processWord(from.platform, this.ctx.globalArgs) : undefined;
      return platform !== undefined ? { image, platform } : { image };
    });
  }

  private async planStage(stage: StageSource): Promise<PlannedStage> {
    const from = this.expandFrom(stage.from);
    const platform = from.platform !== undefined ? atInstruction(stage.from, () => parsePlatform(from.platform!)) : undefined;
    const base = await atInstruction(stage.from, () => this.resolveBase(stage, from.image, platform));
    const basePlatform = platform ?? (base.kind === 'stage' ? this.planned.get(base.index)!.platform : this.ctx.platform);
    const baseConfig = withPath(this.baseConfig(base));
    const triggers = baseConfig.OnBuild ?? [];
    const baseAuthor = base.kind === 'stage' ? this.planned.get(base.index)!.author : base.kind === 'image' ? base.image.config.author || undefined : undefined;
    const state: StageState = {
      scope: base.kind === 'stage' ? this.scopes.get(base.index)!.copy() : Scope.fromEnvList(baseConfig.Env),
      config: ownConfig(baseConfig),
      cmdSet: false,
      envChanged: false,
      steps: [],
      ...(baseAuthor !== undefined ? { author: baseAuthor } : {}),
    };
    const instructions = [...parseTriggers(triggers, from.image), ...stage.instructions];
    const copyImages = await this.resolveCopyImages(instructions, stage.index, basePlatform);
    const dispatchContext = this.dispatchContext(stage.index, copyImages);
    for (const instruction of instructions) dispatch(state, instruction, dispatchContext);
    this.scopes.set(stage.index, state.scope);
    const config = state.config;
    if (state.envChanged) config.Env = state.scope.envList();
    if (config.OnBuild?.length === 0) delete config.OnBuild;
    return {
      index: stage.index,
      ...(stage.name !== undefined ? { name: stage.name } : {}),
      location: stage.from.location,
      base,
      platform: basePlatform,
      steps: state.steps,
      config,
      ...(state.author !== undefined ? { author: state.author } : {}),
    };
  }

  private async resolveBase(stage: StageSource, image: string, platform: Platform | undefined): Promise<StageBase> {
    if (image.toLowerCase() === 'scratch') return { kind: 'scratch' };
    const source = findStage(this.layout, image, stage.index);
    if (source && source.name === image.toLowerCase()) return { kind: 'stage', index: source.index };
    const context = this.ctx.options.buildContexts.get(image);
    if (context?.kind === 'oci-layout') {
      return { kind: 'image', contextName: image, image: await this.ctx.options.resolveImage(context, platform ?? this.ctx.platform) };
    }
    if (context?.kind === 'local') {
      throw new TsbuildError('BAD_FROM', `build context "${image}" is a local directory and cannot be a base image`);
    }
    return { kind: 'image', contextName: image, image: await this.ctx.options.resolveRegistryImage(image, platform ?? this.ctx.platform) };
  }

  private baseConfig(base: StageBase): ContainerConfig {
    if (base.kind === 'scratch') return { Env: [DEFAULT_PATH], WorkingDir: '/' };
    if (base.kind === 'stage') return this.planned.get(base.index)!.config;
    return base.image.config.config ?? {};
  }

  /** Reads the images that `COPY --from` and `RUN --mount from=` name, for the stage's platform. */
  private async resolveCopyImages(instructions: readonly Instruction[], stageIndex: number, platform: Platform): Promise<Map<string, ResolvedImage>> {
    const images = new Map<string, ResolvedImage>();
    for (const ins of instructions) {
      for (const from of atInstruction(ins, () => sourceNames(ins))) {
        const name = atInstruction(ins, () => copyFromName(from, this.ctx.lex));
        const context = this.ctx.options.buildContexts.get(name);
        if (images.has(name) || context?.kind === 'local' || findStage(this.layout, name, stageIndex) || /^\d+$/.test(name)) continue;
        const resolve = context ? () => this.ctx.options.resolveImage(context, platform) : () => this.resolveCopyImage(name, stageIndex, platform);
        images.set(name, await atInstruction(ins, resolve));
      }
    }
    return images;
  }

  /** An image `--from` names; a name that is no image reference, or an image that cannot be resolved, is reported as an unknown stage. */
  private async resolveCopyImage(name: string, stageIndex: number, platform: Platform): Promise<ResolvedImage> {
    if (!isImageReference(name)) throw unknownSourceError(this.layout, name, stageIndex);
    return this.ctx.options.resolveRegistryImage(name, platform).catch((err: unknown) => {
      throw unknownSourceError(this.layout, name, stageIndex, err);
    });
  }

  private dispatchContext(stageIndex: number, copyImages: ReadonlyMap<string, ResolvedImage>): DispatchContext {
    return {
      lex: this.ctx.lex,
      heredocLex: new ShellLex(this.ctx.lex.escapeToken, { skipProcessQuotes: true, budget: this.ctx.budget }),
      buildArgs: this.ctx.options.buildArgs,
      globalArgs: this.ctx.globalArgs,
      consumedArgs: this.ctx.consumedArgs,
      resolveCopyFrom: (from) => this.resolveCopyFrom(from, stageIndex, copyImages),
    };
  }

  private resolveCopyFrom(from: string, stageIndex: number, copyImages: ReadonlyMap<string, ResolvedImage>): CopySource {
    const stage = findStage(this.layout, from, stageIndex);
    if (stage) {
      if (!this.planned.has(stage.index)) throw new TsbuildError('INTERNAL', `stage ${from} was not planned`);
      return { kind: 'stage', index: stage.index };
    }
    const context = this.ctx.options.buildContexts.get(from);
    if (context?.kind === 'local') return { kind: 'local-context', name: from, dir: context.dir };
    const image = copyImages.get(from);
    if (image) return { kind: 'image', contextName: from, image };
    throw new TsbuildError('UNKNOWN_STAGE', `--from=${from}: no earlier stage has index ${from}`);
  }
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** As in BuildKit, a stage always has PATH: the default one is added when the base has none. */
function withPath(config: ContainerConfig): ContainerConfig {
  const env = config.Env ?? [];
  return env.some((pair) => pair.startsWith('PATH=')) ? config : { ...config, Env: [...env, DEFAULT_PATH] };
}

/**
 * A stage's own copy of its base's config, to change in place: the maps and lists an instruction
 * adds to are copied, ONBUILD triggers are not inherited.
 */
function ownConfig(base: ContainerConfig): ContainerConfig {
  const config: ContainerConfig = { ...base, OnBuild: [] };
  if (base.Labels) config.Labels = { ...base.Labels };
  if (base.ExposedPorts) config.ExposedPorts = { ...base.ExposedPorts };
  if (base.Volumes) config.Volumes = { ...base.Volumes };
  return config;
}

/** Parses the ONBUILD triggers of a base image into instructions, which run first in the stage. */
function parseTriggers(triggers: readonly string[], image: string): Instruction[] {
  if (triggers.length === 0) return [];
  const parsed = parseDockerfile(`FROM scratch\n${triggers.join('\n')}\n`, `ONBUILD of ${image}`);
  return parsed.instructions.slice(1) as Instruction[];
}

/** The stages, contexts or images an instruction reads files from: COPY --from and RUN --mount from=. */
function sourceNames(ins: Instruction): string[] {
  if (ins.kind === 'COPY' && ins.from !== undefined) return [ins.from];
  if (ins.kind === 'RUN') return ins.mounts.flatMap((raw) => mountFrom(raw) ?? []);
  return [];
}

function atInstruction<T>(ins: Instruction, action: () => T): T {
  return atSourceLine(ins.location.file, ins.location.startLine, action);
}
