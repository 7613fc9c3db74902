/** How hard the transport retries temporary failures (429, 5xx, reset connections). */
export interface RetryPolicy {
  /** Total tries of one request, the first included. */
  attempts: number;
  /** The wait before the first retry; it doubles each time (with jitter). */
  baseDelayMs: number;
  /** No single wait is longer, except a server's Retry-After within the budget. */
  maxDelayMs: number;
  /** Retrying stops once this much time has passed since the first try. */
  budgetMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000, budgetMs: 120_000 };

/** The wait before retry number `retry` (1-based): exponential, with ±25 % jitter, capped. */
export function backoffDelay(policy: RetryPolicy, retry: number): number {
  const exponential = policy.baseDelayMs * 2 ** (retry - 1);
  const jitter = 0.75 + Math.random() * 0.5;
  return Math.min(policy.maxDelayMs, Math.round(exponential * jitter));
}

/** A `Retry-After` value (seconds, or an HTTP date) in milliseconds from `now`; undefined when absent or malformed. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
