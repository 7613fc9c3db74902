/**
 * Typed, immutable Dockerfile instructions, modelled on BuildKit's instruction commands.
 * Word arguments and flag values are kept raw (unexpanded, quotes as written): the plan
 * builder expands them with the shell lexer once it knows the build arguments and environment.
 */
import type { EscapeToken } from './shell-lex.js';
import type { Heredoc, NetworkMode, SecurityMode, SourceContent, SourceLocation } from '../model/dockerfile.js';

export type { EscapeToken };

/**
 * One instruction as BuildKit's syntax tree holds it, before any typing: what the golden
 * `result` dumps print.
 */
export interface SyntaxNode {
  /** The instruction keyword as written (`RUN`, `run`, ...). */
  readonly keyword: string;
  /** Leading `--flag[=value]` words, quotes and escapes already removed. */
  readonly flags: readonly string[];
  /** The argument words as the instruction's line parser split them. */
  readonly args: readonly string[];
  /** ONBUILD only: the trigger instruction. */
  readonly subcommand?: SyntaxNode;
  /** The arguments were a JSON string array. */
  readonly json: boolean;
  readonly heredocs: readonly Heredoc[];
  /** The logical line: continuation lines joined, comments inside it dropped. */
  readonly original: string;
  /** The comment lines directly above the instruction, `#` removed. */
  readonly comments: readonly string[];
  readonly startLine: number;
  readonly endLine: number;
}

/** `# name=value` lines at the very top of the file. */
export interface ParserDirectives {
  /** Recorded only: no other frontend is ever loaded. */
  readonly syntax?: string;
  readonly escape?: string;
  /** Lint configuration, recorded as written. */
  readonly check?: string;
}

/** A whole Dockerfile at syntax-tree level. */
export interface SyntaxTree {
  readonly directives: ParserDirectives;
  readonly escapeToken: EscapeToken;
  readonly nodes: readonly SyntaxNode[];
}

interface InstructionBase<K extends string> {
  readonly kind: K;
  readonly location: SourceLocation;
  /** The logical line, trimmed: what image history records as `created_by`. */
  readonly original: string;
  readonly node: SyntaxNode;
}

/** An ENV or LABEL entry. */
export interface KeyValuePair {
  readonly key: string;
  readonly value: string;
  /** Written in the legacy `KEY value` form, without `=`. */
  readonly noDelim: boolean;
}

/** The command of RUN, CMD, ENTRYPOINT or HEALTHCHECK CMD. */
export interface CommandLine {
  /** Exec form: the JSON array's strings. Shell form: one string, the command as written. */
  readonly args: readonly string[];
  /** Shell form: the stage's shell is put in front when the command runs. */
  readonly prependShell: boolean;
}

export interface FromInstruction extends InstructionBase<'FROM'> {
  readonly image: string;
  /** `AS name`, lowercased. */
  readonly stageName?: string;
  readonly platform?: string;
}

export interface RunInstruction extends InstructionBase<'RUN'> {
  readonly command: CommandLine;
  readonly heredocs: readonly Heredoc[];
  /** Raw `--mount` values, in order. */
  readonly mounts: readonly string[];
  readonly network: NetworkMode;
  readonly security: SecurityMode;
}

export interface CmdInstruction extends InstructionBase<'CMD'> {
  readonly command: CommandLine;
}

export interface EntrypointInstruction extends InstructionBase<'ENTRYPOINT'> {
  readonly command: CommandLine;
}

export interface LabelInstruction extends InstructionBase<'LABEL'> {
  readonly labels: readonly KeyValuePair[];
}

export interface MaintainerInstruction extends InstructionBase<'MAINTAINER'> {
  readonly maintainer: string;
}

export interface ExposeInstruction extends InstructionBase<'EXPOSE'> {
  /** Sorted, as BuildKit sorts them before expansion. */
  readonly ports: readonly string[];
}

export interface EnvInstruction extends InstructionBase<'ENV'> {
  readonly env: readonly KeyValuePair[];
}

export interface AddInstruction extends InstructionBase<'ADD'> {
  /** Source paths or URLs (heredoc sources are in `sourceContents`). */
  readonly sources: readonly string[];
  readonly sourceContents: readonly SourceContent[];
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly excludes: readonly string[];
  readonly checksum?: string;
  /** Set only when `--keep-git-dir` was given. */
  readonly keepGitDir?: boolean;
  /** Set only when `--unpack` was given. */
  readonly unpack?: boolean;
  readonly heredocs: readonly Heredoc[];
}

export interface CopyInstruction extends InstructionBase<'COPY'> {
  /** Source paths (heredoc sources are in `sourceContents`). */
  readonly sources: readonly string[];
  readonly sourceContents: readonly SourceContent[];
  readonly dest: string;
  readonly from?: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly parents: boolean;
  readonly excludes: readonly string[];
  readonly heredocs: readonly Heredoc[];
}

export interface VolumeInstruction extends InstructionBase<'VOLUME'> {
  readonly volumes: readonly string[];
}

export interface UserInstruction extends InstructionBase<'USER'> {
  readonly user: string;
}

export interface WorkdirInstruction extends InstructionBase<'WORKDIR'> {
  readonly path: string;
}

/** One `name[=default]` of an ARG line. */
export interface ArgDefinition {
  readonly key: string;
  /** Undefined when no `=` was written. */
  readonly value?: string;
}

export interface ArgInstruction extends InstructionBase<'ARG'> {
  readonly args: readonly ArgDefinition[];
}

export interface StopsignalInstruction extends InstructionBase<'STOPSIGNAL'> {
  readonly signal: string;
}

/** Durations in nanoseconds; 0 means "not set" (the image's or the default value applies). */
export interface HealthConfig {
  /** `['NONE']`, `['CMD', ...exec args]` or `['CMD-SHELL', command]`. */
  readonly test: readonly string[];
  readonly interval: number;
  readonly timeout: number;
  readonly startPeriod: number;
  readonly startInterval: number;
  readonly retries: number;
}

export interface HealthcheckInstruction extends InstructionBase<'HEALTHCHECK'> {
  readonly health: HealthConfig;
}

export interface ShellInstruction extends InstructionBase<'SHELL'> {
  readonly shell: readonly string[];
}

export interface OnbuildInstruction extends InstructionBase<'ONBUILD'> {
  /** The trigger's text as stored in the image config, heredoc bodies appended. */
  readonly expression: string;
  readonly trigger: OnbuildTrigger;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | EnvInstruction
  | AddInstruction
  | CopyInstruction
  | EntrypointInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | ArgInstruction
  | OnbuildInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | ShellInstruction;

export type InstructionKind = Instruction['kind'];

/** What ONBUILD may wrap. */
export type OnbuildTrigger = Exclude<Instruction, FromInstruction | MaintainerInstruction | OnbuildInstruction>;

/** A parsed Dockerfile: its directives and its instructions in file order. */
export interface ParsedDockerfile {
  readonly directives: ParserDirectives;
  readonly escapeToken: EscapeToken;
  readonly instructions: readonly Instruction[];
}
