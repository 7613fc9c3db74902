/** The build plan: for each target platform, the stages a build runs and their expanded steps. */
import type { ContainerConfig, Platform } from '../../layers/types.js';
import type { Heredoc, NetworkMode, SecurityMode, SourceContent, SourceLocation } from './dockerfile.js';
import type { RunMount } from './mounts.js';
import type { CopySource, ResolvedImage } from './sources.js';

/** What a stage starts from. */
export type StageBase =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'image'; readonly contextName: string; readonly image: ResolvedImage };

interface StepBase {
  readonly location: SourceLocation;
  /** The image history's `created_by`. */
  readonly createdBy: string;
}

/** An instruction that changes only the image config. */
export interface MetadataStep extends StepBase {
  readonly kind: 'metadata';
}

export interface CopyStep extends StepBase {
  readonly kind: 'copy';
  readonly instruction: 'COPY' | 'ADD';
  readonly from: CopySource;
  readonly sources: readonly string[];
  readonly sourceContents: readonly SourceContent[];
  /** Absolute destination, WORKDIR applied; a trailing `/` is kept. */
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly parents: boolean;
  readonly excludes: readonly string[];
  /** A digest for an HTTP(S) source, a commit for a git source. */
  readonly checksum?: string;
  readonly unpack?: boolean;
  /** ADD of a git repository keeps its `.git` directory. */
  readonly keepGitDir?: boolean;
}

export interface WorkdirStep extends StepBase {
  readonly kind: 'workdir';
  readonly path: string;
  readonly user?: string;
}

export interface RunStep extends StepBase {
  readonly kind: 'run';
  /** The command, the stage's SHELL already in front for the shell form. */
  readonly args: readonly string[];
  readonly shellForm: boolean;
  readonly heredocs: readonly Heredoc[];
  readonly env: readonly string[];
  /** The names in `env` whose value comes from an ARG (for explaining cache misses). */
  readonly argNames: readonly string[];
  readonly user?: string;
  readonly workdir: string;
  readonly mounts: readonly RunMount[];
  readonly network: NetworkMode;
  readonly security: SecurityMode;
}

export type PlannedStep = MetadataStep | CopyStep | WorkdirStep | RunStep;

export interface PlannedStage {
  readonly index: number;
  readonly name?: string;
  readonly location: SourceLocation;
  readonly base: StageBase;
  readonly platform: Platform;
  readonly steps: readonly PlannedStep[];
  /** The image config after every step (Env included). */
  readonly config: ContainerConfig;
  readonly author?: string;
}

/** Everything a build will do for one target platform, with every word expanded. */
export interface PlatformPlan {
  readonly platform: Platform;
  /** Only the stages the target needs, in Dockerfile order. */
  readonly stages: readonly PlannedStage[];
  readonly targetIndex: number;
}

export interface BuildPlan {
  readonly dockerfile: string;
  readonly notes: readonly string[];
  readonly platforms: readonly PlatformPlan[];
}
