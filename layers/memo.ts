/**
 * Wraps an async computation so that it runs at most once at a time and its result is kept. A
 * failure is not kept: the next call tries again (a network error may be temporary).
 */
export function memo<T>(compute: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= compute().catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
