/** The results of a bench run: a plain text table per workload, and the same as JSON. */
import { median } from '../median.js';
import type { BuildMeasure } from './builders/builder.js';

/** The limits on tsbuild. */
export const PEAK_RSS_LIMIT_BYTES = 200 * 1024 * 1024;
export const VERSION_LIMIT_SECONDS = 0.1;

export interface BuilderResult {
  readonly builder: string;
  readonly layerKind: string;
  /** The `--isolation` value of a tsbuild row; absent for the builders it is compared with. */
  readonly isolation?: string;
  readonly runs: BuildMeasure[];
  /** Why the builder has no result for this workload. */
  failed?: string;
}

export interface WorkloadResult {
  readonly id: string;
  readonly title: string;
  readonly builders: BuilderResult[];
}

export interface VersionResult {
  readonly seconds?: number;
  readonly failed?: string;
}

interface Summary {
  readonly builder: string;
  readonly isolation?: string;
  /** tsbuild's own account of its isolation, from the last run that gave one. */
  readonly isolationNote?: string;
  readonly medianSeconds?: number;
  /** For a tsbuild row: its median divided by each other builder's, by name. */
  readonly ratios?: Record<string, number>;
  readonly peakRssBytes?: number;
  readonly layerBytes?: number;
  readonly layerKind: string;
  readonly failed?: string;
}

const MiB = 1024 * 1024;

function summarizeOne(result: BuilderResult): Summary {
  const { builder, layerKind, isolation, runs, failed } = result;
  const base = { builder, layerKind, ...(isolation !== undefined && { isolation }) };
  if (failed !== undefined || runs.length === 0) return { ...base, failed: failed ?? 'no runs' };
  const rss = runs.map((run) => run.peakRssBytes).filter((value): value is number => value !== undefined);
  const layers = runs.map((run) => run.layerBytes).filter((value): value is number => value !== undefined && Number.isFinite(value));
  const note = runs.map((run) => run.isolation).filter((value): value is string => value !== undefined).pop();
  return {
    ...base,
    ...(note !== undefined && { isolationNote: note }),
    medianSeconds: median(runs.map((run) => run.seconds)),
    ...(rss.length > 0 && { peakRssBytes: Math.max(...rss) }),
    ...(layers.length > 0 && { layerBytes: median(layers) }),
  };
}

/** One summary per builder, tsbuild rows with their ratios to every other builder that has a median. */
function summarize(result: WorkloadResult): Summary[] {
  const summaries = result.builders.map(summarizeOne);
  const others = summaries.filter((s) => s.isolation === undefined && s.medianSeconds !== undefined);
  return summaries.map((s) => {
    if (s.isolation === undefined || s.medianSeconds === undefined) return s;
    return { ...s, ratios: Object.fromEntries(others.map((o) => [o.builder, s.medianSeconds! / o.medianSeconds!])) };
  });
}

function formatBytes(bytes: number | undefined, kind: string): string {
  if (bytes === undefined) return 'n/a';
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB ${kind}` : `${(bytes / 1024).toFixed(1)} KiB ${kind}`;
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/**
 * The text printed for one workload: title; one row per builder with the median, each tsbuild
 * row's ratios to the other builders, peak RSS, layer sizes and tsbuild's isolation note; the
 * reasons of the builders that failed; and each tsbuild row's peak RSS against the limit.
 */
export function formatWorkload(result: WorkloadResult, runs: number): string {
  const summaries = summarize(result);
  const others = summaries.filter((s) => s.isolation === undefined).map((s) => s.builder);
  const rows = [['builder', `median s (of ${runs})`, ...others.map((name) => `this/${name}`), 'peak RSS', 'layers added', 'isolation (as tsbuild reports it)']];
  const failures: string[] = [];
  for (const s of summaries) {
    if (s.failed !== undefined) {
      rows.push([s.builder, 'failed', ...others.map(() => ''), '', '', '']);
      failures.push(`${s.builder} failed: ${s.failed}`);
      continue;
    }
    rows.push([
      s.builder,
      s.medianSeconds!.toFixed(2),
      ...others.map((name) => (s.isolation === undefined ? '' : s.ratios?.[name]?.toFixed(2) ?? 'n/a')),
      s.peakRssBytes === undefined ? 'n/a' : `${(s.peakRssBytes / MiB).toFixed(0)} MiB`,
      formatBytes(s.layerBytes, s.layerKind),
      s.isolationNote ?? '',
    ]);
  }
  const lines = [result.title, table(rows), ...failures];
  const measured = summaries.filter((s) => s.isolation !== undefined && s.peakRssBytes !== undefined);
  if (measured.length > 0) {
    const verdicts = measured.map((s) => `${s.isolation} ${(s.peakRssBytes! / MiB).toFixed(0)} MiB ${s.peakRssBytes! <= PEAK_RSS_LIMIT_BYTES ? 'within' : 'OVER'}`);
    lines.push(`tsbuild peak RSS against the ${PEAK_RSS_LIMIT_BYTES / MiB} MiB limit: ${verdicts.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatVersion(version: VersionResult, runs: number): string {
  if (version.seconds === undefined) return `tsbuild --version: failed: ${version.failed}\n`;
  const verdict = version.seconds <= VERSION_LIMIT_SECONDS ? 'within' : 'OVER';
  return `tsbuild --version: median ${version.seconds.toFixed(3)} s of ${runs}, ${verdict} the ${VERSION_LIMIT_SECONDS} s limit\n`;
}

/** Everything measured, with the summaries, for `--json`. */
export function jsonReport(workloads: readonly WorkloadResult[], version: VersionResult, runs: number, machine: object): string {
  return `${JSON.stringify({
    runs,
    machine,
    version,
    workloads: workloads.map((w) => ({ ...w, summaries: summarize(w) })),
  }, null, 2)}\n`;
}
