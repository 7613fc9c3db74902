import { SourceError, TsbuildError } from '../../layers/errors.js';
import { parseReference } from '../../registry-client/reference.js';
import type { ArgInstruction, FromInstruction, Instruction, ParsedDockerfile } from '../frontend/instructions.js';

/** One `FROM` and the instructions up to the next. */
export interface StageSource {
  readonly index: number;
  readonly name?: string;
  readonly from: FromInstruction;
  readonly instructions: readonly Instruction[];
}

export interface StageLayout {
  /** The ARGs before the first FROM: visible only to FROM lines unless re-declared. */
  readonly globalArgs: readonly ArgInstruction[];
  readonly stages: readonly StageSource[];
  /** Stage index by (lower-case) name, so that finding a stage costs the same however many there are. */
  readonly names: ReadonlyMap<string, number>;
}

const stageNamePattern = /^[a-z][a-z0-9-_.]*$/;

/** Splits a Dockerfile into its global ARGs and its stages, checking stage names. */
export function splitStages(parsed: ParsedDockerfile): StageLayout {
  const globalArgs: ArgInstruction[] = [];
  const stages: { index: number; name?: string; from: FromInstruction; instructions: Instruction[] }[] = [];
  const names = new Map<string, number>();
  for (const instruction of parsed.instructions) {
    if (instruction.kind === 'FROM') {
      const name = instruction.stageName;
      if (name !== undefined) {
        const { file, startLine } = instruction.location;
        if (!stageNamePattern.test(name)) throw new SourceError(file, startLine, `invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
        if (names.has(name)) throw new SourceError(file, startLine, `duplicate stage name "${name}"`);
        names.set(name, stages.length);
      }
      stages.push({ index: stages.length, ...(name !== undefined ? { name } : {}), from: instruction, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push(instruction);
    } else if (instruction.kind === 'ARG') {
      globalArgs.push(instruction);
    } else {
      const { file, startLine } = instruction.location;
      throw new SourceError(file, startLine, `${instruction.kind} instruction before the first FROM`);
    }
  }
  if (stages.length === 0) throw new TsbuildError('NO_STAGES', 'the Dockerfile has no FROM instruction');
  return { globalArgs, stages, names };
}

/** Finds a stage by name (case-insensitive) or index among the stages before `before`. */
export function findStage(layout: StageLayout, ref: string, before: number): StageSource | undefined {
  const byName = layout.names.get(ref.toLowerCase());
  if (byName !== undefined && byName < before) return layout.stages[byName];
  if (/^\d+$/.test(ref)) {
    const index = Number(ref);
    if (index < before) return layout.stages[index];
  }
  return undefined;
}

/** The index of the stage `--target` names, or the last stage. */
export function targetIndex(layout: StageLayout, target: string | undefined): number {
  if (target === undefined || target === '') return layout.stages.length - 1;
  const index = layout.names.get(target.toLowerCase());
  if (index === undefined) throw new TsbuildError('UNKNOWN_TARGET', `target stage "${target}" could not be found`);
  return index;
}

/**
 * The error for a `--from` name that is no earlier stage and no image that could be resolved. As in
 * BuildKit, a name is tried as an image only when it parses as an image reference; `cause` is why
 * that image could not be resolved.
 */
export function unknownSourceError(layout: StageLayout, name: string, before: number, cause?: unknown): TsbuildError {
  const earlier = layout.stages.slice(0, before).map((s) => s.name ?? String(s.index));
  const stages = earlier.length > 0 ? `stages before this one: ${earlier.join(', ')}` : 'no stage comes before this one';
  const image = cause === undefined ? `"${name}" is not a valid image reference either` : `no image "${name}" could be resolved either (${cause instanceof Error ? cause.message : String(cause)})`;
  return new TsbuildError('UNKNOWN_STAGE', `--from=${name}: no build stage named "${name}" (${stages}), and ${image}: name an earlier stage or a full image reference`, { cause });
}

/** Whether `name` parses as an image reference (`busybox`, `alpine:3`, `host:5000/app@sha256:…`). */
export function isImageReference(name: string): boolean {
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}
