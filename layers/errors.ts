/**
 * Every code a TsbuildError can carry, by where the failure comes from. The union is closed: a new
 * failure picks one of these or adds it here, so the compiler checks every place that makes one,
 * and the CLI's exit code follows from the group.
 */
const codesByGroup = {
  /** A command-line flag, a request field or an environment variable the caller gave. */
  usage: ['BAD_FLAG', 'BAD_ENV', 'BAD_OUTPUT', 'BAD_SECRET', 'BAD_SSH', 'BAD_BUILD_CONTEXT', 'BAD_REFERENCE', 'COMPRESSION_LEVEL', 'SOURCE_DATE_EPOCH', 'REGISTRY_CA', 'PLATFORM'],
  /** The Dockerfile: its syntax, its instructions and what they expand to. */
  frontend: [
    'SOURCE', 'NO_DOCKERFILE', 'NO_STAGES', 'EXPANSION', 'EXPANSION_LIMIT', 'BAD_FROM', 'BAD_MOUNT', 'BAD_CHMOD', 'BAD_OWNER', 'BAD_PORT', 'BAD_SIGNAL',
    'BAD_VOLUME', 'BAD_RUN', 'BAD_CHECKSUM', 'BAD_COPY_FROM', 'BAD_PATTERN', 'COPY_URL', 'UNKNOWN_STAGE', 'UNKNOWN_TARGET',
  ],
  /** The build context and the other sources COPY and ADD read. */
  context: [
    'OUTSIDE_CONTEXT', 'SOURCE_NOT_FOUND', 'SOURCE_READ', 'SOURCE_CHANGED', 'SPECIAL_FILE', 'SYMLINK_LOOP', 'IGNORE_FILE', 'IGNORE_PATTERN', 'ADD_URL',
    'ADD_GIT', 'ADD_CHECKSUM', 'COPY_DEST', 'UNKNOWN_USER', 'UNKNOWN_GROUP', 'WORKDIR',
  ],
  /** Images, layers and layouts: their content, digests and tars. */
  image: [
    'LAYOUT', 'ARCHIVE', 'IMAGE_NOT_FOUND', 'BAD_IMAGE', 'INVALID_LAYER', 'UNSAFE_LAYER', 'DIGEST', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'MANIFEST_INVALID', 'DECOMPRESS',
    'COMMAND_FAILED', 'TAR_PATH', 'TAR_WHITEOUT_NAME', 'TAR_ENTRY', 'TAR_DUPLICATE', 'TAR_HARDLINK', 'TAR_SIZE', 'XATTR_READ', 'XATTR_WRITE',
  ],
  /** A registry: what it answered, or that it could not be reached (the distribution spec's codes and ours). */
  registry: [
    'UNAUTHORIZED', 'DENIED', 'NOT_FOUND', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'SERVER_ERROR', 'UNEXPECTED_STATUS', 'UNKNOWN', 'UNREACHABLE', 'CONNECTION',
    'TLS', 'PROTOCOL', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNKNOWN',
    'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'CREDENTIALS', 'PUSH',
  ],
  /** A RUN step, its isolation and the root filesystem it runs in. */
  run: [
    'RUN_FAILED', 'RUN_TIMEOUT', 'RUN_UNSUPPORTED', 'ISOLATION', 'ISOLATION_UNAVAILABLE', 'USERNS_ID_MAP', 'USERNS_UNAVAILABLE', 'IN_PLACE', 'IN_PLACE_CONFLICT',
    'MOUNT_POINT', 'NO_PROC', 'OVERLAY_MOUNT', 'OVERLAY_UNSUPPORTED', 'ROOTFS_COPY', 'UNMOUNT', 'SECRET_MISSING', 'SSH_MISSING', 'SSH_AGENT',
    'SNAPSHOT_CHANGED', 'WORKSPACE',
  ],
  /** Writing the result: layouts, archives, the local store. */
  output: ['OUTPUT'],
  /** The build cache, local or in a registry. */
  cache: ['CACHE_DIR', 'CACHE_RECORD', 'CACHE_REPO'],
  /** The machine (its space, its tools), the user's interrupt, or a bug in tsbuild. */
  system: ['NO_SPACE', 'TOOL_MISSING', 'INTERRUPTED', 'INTERNAL'],
} as const;

export type ErrorGroup = keyof typeof codesByGroup;
export type ErrorCode = (typeof codesByGroup)[ErrorGroup][number];

const groupOfCode = new Map<string, ErrorGroup>(Object.entries(codesByGroup).flatMap(([group, codes]) => codes.map((code): [string, ErrorGroup] => [code, group as ErrorGroup])));

/** Whether `code` (say, one a registry sent) is one of ours. */
export function isErrorCode(code: string): code is ErrorCode {
  return groupOfCode.has(code);
}

/**
 * The one error base class of tsbuild. Every failure a user can cause carries a stable `code`
 * from the closed union above and a one-line message; only the CLI turns these into exit codes.
 */
export class TsbuildError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsbuildError';
    this.code = code;
  }

  /** Where the failure comes from. */
  get group(): ErrorGroup {
    return groupOfCode.get(this.code)!;
  }
}

/**
 * A failure tied to a place in a Dockerfile: printed as `file:line: message`. Its code is the one
 * of the TsbuildError it locates (so a failed download at a line is still ADD_URL), else SOURCE.
 */
export class SourceError extends TsbuildError {
  readonly file: string;
  readonly line: number;

  constructor(file: string, line: number, message: string, options?: { cause?: unknown }) {
    super(options?.cause instanceof TsbuildError ? options.cause.code : 'SOURCE', `${file}:${line}: ${message}`, options);
    this.name = 'SourceError';
    this.file = file;
    this.line = line;
  }
}

/**
 * Runs `action` (sync or async) so that a TsbuildError it throws without a location is re-thrown
 * as a SourceError at `file:line`.
 */
export function atSourceLine<T>(file: string, line: number, action: () => T): T {
  const locate = (err: unknown): unknown =>
    err instanceof TsbuildError && !(err instanceof SourceError) ? new SourceError(file, line, err.message, { cause: err }) : err;
  try {
    const result = action();
    if (result instanceof Promise) {
      return result.catch((err: unknown) => {
        throw locate(err);
      }) as T;
    }
    return result;
  } catch (err) {
    throw locate(err);
  }
}

/**
 * Why a command run with `execFile` failed: one line of its stderr (the first, or the last for tools
 * such as git that end with the cause), else the error's own message.
 */
export function commandFailure(error: unknown, line: 'first' | 'last' = 'first'): string {
  const lines = ((error as { stderr?: string }).stderr ?? '').split('\n').map((text) => text.trim()).filter(Boolean);
  return (line === 'first' ? lines[0] : lines[lines.length - 1]) ?? (error instanceof Error ? error.message : String(error));
}
