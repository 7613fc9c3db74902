/**
 * What a test needs that a machine may lack (root, a tool, a working runtime). Run unprivileged
 * outside CI, or in the fast tier, a test whose need is not met skips and says why. Run as root
 * or in CI (the full suite), a need that is not met is a failure: a machine without runc or
 * skopeo must not pass by skipping.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';

/** Set by the fast tier (test/run-fast.sh), which is meant to run anywhere. */
const fastTier = process.env.TSBUILD_TEST_TIER === 'fast';
const strict = !fastTier && (process.getuid?.() === 0 || Boolean(process.env.CI));

/**
 * The `skip` option for tests that need what `missing` names (false when nothing is missing).
 * When a missing need must fail, a failing test naming it is registered in the caller's place,
 * and the tests themselves are skipped (there is nothing they could show).
 */
export function requires(missing: string | false): string | false {
  if (missing === false) return false;
  if (strict) test(`requirement: ${missing}`, () => assert.fail(`${missing} (as root or in CI a missing requirement fails the suite)`));
  return missing;
}

/** The same, decided inside a running test: skips it with the reason, or fails it. */
export function requiresInTest(t: TestContext, missing: string): void {
  if (strict) assert.fail(`${missing} (as root or in CI a missing requirement fails the suite)`);
  t.skip(missing);
}
