import type { BuildEvent } from '../builder/index.js';
import { formatBytes } from './transfer-status.js';

export type ReportMode = 'short' | 'full' | 'json' | 'none';

/** `cached`: reused from the build cache; `built`: ran; `metadata`: changed only the image config. */
type CacheState = 'cached' | 'built' | 'metadata';

interface StepReport {
  readonly step: number;
  readonly name: string;
  cache: CacheState;
  seconds: number;
  layerBytes: number;
}

const SHORT_STEPS = 5;

/**
 * The layer report: per step its cache state, duration and the size of the layer it added, the
 * heaviest first (by size, then time), and the totals. Fed the build's events as they come.
 */
export class LayerReport {
  private readonly steps = new Map<number, StepReport>();

  readonly listener = (event: BuildEvent): void => {
    if (event.kind === 'step-start') this.steps.set(event.step, { step: event.step, name: event.name, cache: 'metadata', seconds: 0, layerBytes: 0 });
    const step = 'step' in event ? this.steps.get(event.step) : undefined;
    if (!step) return;
    if (event.kind === 'step-cache') step.cache = event.cached ? 'cached' : 'built';
    if (event.kind === 'step-done') {
      step.seconds = event.seconds;
      step.layerBytes = event.layerBytes ?? 0;
      // A step that wrote a layer without consulting the cache (the cache was off) ran.
      if (step.cache === 'metadata' && step.layerBytes > 0) step.cache = 'built';
    }
  };

  /** The report as lines for stderr; none when no step ran. */
  lines(mode: ReportMode): string[] {
    if (mode === 'none' || this.steps.size === 0) return [];
    if (mode === 'json') return [JSON.stringify({ kind: 'report', ...this.totals(), steps: this.sorted() })];
    const { totalBytes, totalSeconds, cachedSteps } = this.totals();
    const all = this.sorted();
    const shown = mode === 'full' ? all : all.slice(0, SHORT_STEPS);
    const left = all.length - shown.length;
    return [
      `layer report: ${all.length} steps, ${cachedSteps} cached, ${formatBytes(totalBytes)} of layers in ${totalSeconds.toFixed(1)}s`,
      ...shown.map((s) => `  ${formatBytes(s.layerBytes).padStart(10)} ${`${s.seconds.toFixed(1)}s`.padStart(7)}  ${s.cache.padEnd(8)} #${s.step} ${s.name}`),
      ...(left > 0 ? [`  (${left} lighter steps left out: --report=full lists every step)`] : []),
    ];
  }

  private sorted(): StepReport[] {
    return [...this.steps.values()].sort((a, b) => b.layerBytes - a.layerBytes || b.seconds - a.seconds || a.step - b.step);
  }

  private totals(): { totalBytes: number; totalSeconds: number; cachedSteps: number } {
    const all = [...this.steps.values()];
    return {
      totalBytes: all.reduce((sum, s) => sum + s.layerBytes, 0),
      totalSeconds: all.reduce((sum, s) => sum + s.seconds, 0),
      cachedSteps: all.filter((s) => s.cache === 'cached').length,
    };
  }
}
