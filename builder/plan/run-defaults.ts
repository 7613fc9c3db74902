import { isIP } from 'node:net';
import { TsbuildError } from '../../layers/errors.js';
import type { NetworkMode } from '../model/dockerfile.js';
import type { BuildPlan, PlannedStep } from '../model/plan.js';

/** Build-wide settings for RUN steps: `--network` and `--add-host`. */
export interface RunDefaults {
  /** The network of a RUN step that does not say `--network` itself. */
  readonly network?: NetworkMode;
  /** `host:ip` entries for every RUN step's /etc/hosts. */
  readonly extraHosts?: readonly string[];
}

const hostNamePattern = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** Checks `--add-host` values: `host:ip` (or `host=ip`, as buildx also accepts), the address IPv4 or IPv6. */
export function parseAddHosts(values: readonly string[]): string[] {
  return values.map((value) => {
    const cut = /[:=]/.exec(value);
    const host = cut ? value.slice(0, cut.index) : '';
    const ip = cut ? value.slice(cut.index + 1).replace(/^\[(.*)\]$/, '$1') : '';
    if (!hostNamePattern.test(host)) throw new TsbuildError('BAD_FLAG', `invalid --add-host "${value}": expected HOST:IP with a host name before the colon, e.g. db.local:10.0.0.5`);
    if (isIP(ip) === 0) throw new TsbuildError('BAD_FLAG', `invalid --add-host "${value}": "${ip}" is not an IPv4 or IPv6 address`);
    return `${host}:${ip}`;
  });
}

/** The plan with the build-wide RUN defaults applied: they enter each RUN step, and so its cache key. */
export function applyRunDefaults(plan: BuildPlan, defaults: RunDefaults): BuildPlan {
  const network = defaults.network ?? 'default';
  const extraHosts = defaults.extraHosts ?? [];
  if (network === 'default' && extraHosts.length === 0) return plan;
  const withDefaults = (step: PlannedStep): PlannedStep =>
    step.kind !== 'run' ? step : { ...step, network: step.network === 'default' ? network : step.network, ...(extraHosts.length > 0 ? { extraHosts } : {}) };
  return {
    ...plan,
    platforms: plan.platforms.map((p) => ({ ...p, stages: p.stages.map((s) => ({ ...s, steps: s.steps.map(withDefaults) })) })),
  };
}
