/**
 * The one error base class of tsbuild. Every failure a user can cause carries a stable
 * `code` and a one-line message; only the CLI turns these into exit codes.
 */
export class TsbuildError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TsbuildError';
    this.code = code;
  }
}

/** A failure tied to a place in a Dockerfile: printed as `file:line: message`. */
export class SourceError extends TsbuildError {
  readonly file: string;
  readonly line: number;

  constructor(file: string, line: number, message: string, options?: { cause?: unknown }) {
    super('SOURCE', `${file}:${line}: ${message}`, options);
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
