/** The results of a bench run: a plain text table per workload, and the same as JSON. */
import { median } from '../median.js';
import type { BuildMeasure } from './builders/builder.js';

/** The limits on tsbuild. */
export const PEAK_RSS_LIMIT_BYTES = 200 * 1024 * 1024;
export const VERSION_LIMIT_SECONDS = 0.1;

export interface BuilderResult {
  readonly builder: string;
  readonly layerKind: string;
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
  readonly medianSeconds?: number;
  readonly peakRssBytes?: number;
  readonly layerBytes?: number;
  readonly layerKind: string;
  readonly failed?: string;
}

const MiB = 1024 * 1024;

function summarize(result: BuilderResult): Summary {
  const { builder, layerKind, runs, failed } = result;
  if (failed !== undefined || runs.length === 0) return { builder, layerKind, failed: failed ?? 'no runs' };
  const rss = runs.map((run) => run.peakRssBytes).filter((value): value is number => value !== undefined);
  const layers = runs.map((run) => run.layerBytes).filter((value): value is number => value !== undefined && Number.isFinite(value));
  return {
    builder,
    layerKind,
    medianSeconds: median(runs.map((run) => run.seconds)),
    ...(rss.length > 0 && { peakRssBytes: Math.max(...rss) }),
    ...(layers.length > 0 && { layerBytes: median(layers) }),
  };
}

function ratio(summaries: readonly Summary[], of: string, to: string): string {
  const a = summaries.find((s) => s.builder === of)?.medianSeconds;
  const b = summaries.find((s) => s.builder === to)?.medianSeconds;
  return a === undefined || b === undefined ? 'n/a' : `${(a / b).toFixed(2)}`;
}

function formatBytes(bytes: number | undefined, kind: string): string {
  if (bytes === undefined) return 'n/a';
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB ${kind}` : `${(bytes / 1024).toFixed(1)} KiB ${kind}`;
}

function table(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

/** The text printed for one workload: title, one row per builder, the ratios and the RSS limit. */
export function formatWorkload(result: WorkloadResult, runs: number): string {
  const summaries = result.builders.map(summarize);
  const rows = [['builder', `median s (of ${runs})`, 'tsbuild/this', 'peak RSS', 'layers added']];
  for (const s of summaries) {
    if (s.failed !== undefined) {
      rows.push([s.builder, 'failed', '', '', s.failed]);
      continue;
    }
    rows.push([
      s.builder,
      s.medianSeconds!.toFixed(2),
      s.builder === 'tsbuild' ? '1.00' : ratio(summaries, 'tsbuild', s.builder),
      s.peakRssBytes === undefined ? 'n/a' : `${(s.peakRssBytes / MiB).toFixed(0)} MiB`,
      formatBytes(s.layerBytes, s.layerKind),
    ]);
  }
  const lines = [result.title, table(rows)];
  const rss = summaries.find((s) => s.builder === 'tsbuild')?.peakRssBytes;
  if (rss !== undefined) lines.push(`tsbuild peak RSS ${(rss / MiB).toFixed(0)} MiB: ${rss <= PEAK_RSS_LIMIT_BYTES ? 'within' : 'OVER'} the ${PEAK_RSS_LIMIT_BYTES / MiB} MiB limit`);
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
    workloads: workloads.map((w) => ({ ...w, summaries: w.builders.map(summarize) })),
  }, null, 2)}\n`;
}
