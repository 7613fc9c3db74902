/** What a planned step carries from its Dockerfile: where it was written, its inline sources, its RUN modes. */

/** Where an instruction sits in its Dockerfile; lines are 1-based and inclusive. */
export interface SourceLocation {
  readonly file: string;
  readonly startLine: number;
  readonly endLine: number;
}

/** A here-document attached to a RUN, COPY or ADD instruction. */
export interface Heredoc {
  /** The delimiter word with quotes removed (`EOF` for `<<"EOF"`). */
  readonly name: string;
  /** The body, each line with its line ending. `<<-` bodies keep their leading tabs here. */
  readonly content: string;
  /** False when any part of the delimiter was quoted: the body is then used literally. */
  readonly expand: boolean;
  /** True for `<<-`: leading tabs are stripped from the body when it is used. */
  readonly chomp: boolean;
  /** The file descriptor written before `<<` (`3<<EOF`); 0 when none. */
  readonly fileDescriptor: number;
}

/** A COPY or ADD source given inline as a heredoc. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  readonly path: string;
  /** The body; for `<<-` with leading tabs already stripped. */
  readonly data: string;
  /** Variables in the body are expanded. */
  readonly expand: boolean;
}

/** `RUN --network`. */
export type NetworkMode = 'default' | 'none' | 'host';
/** `RUN --security`. */
export type SecurityMode = 'sandbox' | 'insecure';
