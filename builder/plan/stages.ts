import { SourceError, TsbuildError } from '../../layers/errors.js';
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
}

const stageNamePattern = /^[a-z][a-z0-9-_.]*$/;

/** Splits a Dockerfile into its global ARGs and its stages, checking stage names. */
export function splitStages(parsed: ParsedDockerfile): StageLayout {
  const globalArgs: ArgInstruction[] = [];
  const stages: { index: number; name?: string; from: FromInstruction; instructions: Instruction[] }[] = [];
  for (const instruction of parsed.instructions) {
    if (instruction.kind === 'FROM') {
      const name = instruction.stageName;
      if (name !== undefined) {
        const { file, startLine } = instruction.location;
        if (!stageNamePattern.test(name)) throw new SourceError(file, startLine, `invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
        if (stages.some((s) => s.name === name)) throw new SourceError(file, startLine, `duplicate stage name "${name}"`);
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
  return { globalArgs, stages };
}

/** Finds a stage by name (case-insensitive) or index among the stages before `before`. */
export function findStage(stages: readonly StageSource[], ref: string, before: number): StageSource | undefined {
  const lowered = ref.toLowerCase();
  const byName = stages.find((s) => s.index < before && s.name === lowered);
  if (byName) return byName;
  if (/^\d+$/.test(ref)) {
    const index = Number(ref);
    if (index < before) return stages[index];
  }
  return undefined;
}

/** The index of the stage `--target` names, or the last stage. */
export function targetIndex(stages: readonly StageSource[], target: string | undefined): number {
  if (target === undefined || target === '') return stages.length - 1;
  const stage = stages.find((s) => s.name === target.toLowerCase());
  if (!stage) throw new TsbuildError('UNKNOWN_TARGET', `target stage "${target}" could not be found`);
  return stage.index;
}
