/** The bench's tables and JSON report with a tsbuild row per isolation mode. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatWorkload, jsonReport, type WorkloadResult } from '../../bench/compare/report.js';

const MiB = 1024 * 1024;

/** Three runs each; the medians are tsbuild oci 2 s, rootless 6 s, BuildKit 4 s, Buildah 8 s. */
function result(): WorkloadResult {
  return {
    id: 'w1',
    title: 'w1: ten RUN steps',
    builders: [
      {
        builder: 'tsbuild --isolation=oci', layerKind: 'gzip', isolation: 'oci',
        runs: [3, 1, 2].map((seconds) => ({ seconds, peakRssBytes: 90 * MiB, layerBytes: 1126, isolation: 'oci (--isolation=oci with runc)' })),
      },
      {
        builder: 'tsbuild --isolation=rootless', layerKind: 'gzip', isolation: 'rootless',
        runs: [6, 7, 5].map((seconds, i) => ({ seconds, peakRssBytes: (150 + 30 * i) * MiB, layerBytes: 3 * MiB, isolation: 'rootless (in a user namespace)' })),
      },
      { builder: 'tsbuild --isolation=none', layerKind: 'gzip', isolation: 'none', runs: [], failed: 'could not be set up: umoci: not found' },
      { builder: 'BuildKit', layerKind: 'unpacked', runs: [4, 5, 3].map((seconds) => ({ seconds, layerBytes: 60 })) },
      { builder: 'Buildah', layerKind: 'tar', runs: [8, 9, 7].map((seconds) => ({ seconds })) },
    ],
  };
}

test('each tsbuild row shows its median, its ratios to BuildKit and Buildah, RSS, layers and isolation note', () => {
  const lines = formatWorkload(result(), 3).split('\n');
  assert.equal(lines[0], 'w1: ten RUN steps');
  assert.deepEqual(lines[1]!.split(/\s{2,}/), ['builder', 'median s (of 3)', 'this/BuildKit', 'this/Buildah', 'peak RSS', 'layers added', 'isolation (as tsbuild reports it)']);
  assert.deepEqual(lines[2]!.split(/\s{2,}/), ['tsbuild --isolation=oci', '2.00', '0.50', '0.25', '90 MiB', '1.1 KiB gzip', 'oci (--isolation=oci with runc)']);
  assert.deepEqual(lines[3]!.split(/\s{2,}/), ['tsbuild --isolation=rootless', '6.00', '1.50', '0.75', '210 MiB', '3.0 MiB gzip', 'rootless (in a user namespace)']);
  assert.deepEqual(lines[4]!.split(/\s{2,}/), ['tsbuild --isolation=none', 'failed']);
  assert.deepEqual(lines[5]!.split(/\s{2,}/), ['BuildKit', '4.00', 'n/a', '0.1 KiB unpacked']);
  assert.deepEqual(lines[6]!.split(/\s{2,}/), ['Buildah', '8.00', 'n/a', 'n/a']);
});

test('a row that failed gets its one-line reason, and the RSS limit is judged per tsbuild row', () => {
  const text = formatWorkload(result(), 3);
  assert.match(text, /^tsbuild --isolation=none failed: could not be set up: umoci: not found$/m);
  assert.match(text, /^tsbuild peak RSS against the 200 MiB limit: oci 90 MiB within, rootless 210 MiB OVER$/m);
});

test('without BuildKit results the ratios to it are n/a', () => {
  const partial = result();
  partial.builders[3]!.failed = 'dockerd did not start';
  const row = formatWorkload(partial, 3).split('\n')[2]!.split(/\s{2,}/);
  assert.deepEqual(row.slice(0, 4), ['tsbuild --isolation=oci', '2.00', 'n/a', '0.25']);
});

test('the JSON report carries every row with its runs and a summary with ratios and isolation', () => {
  const report = JSON.parse(jsonReport([result()], { seconds: 0.05 }, 3, { cores: 2 })) as {
    runs: number;
    workloads: Array<{ builders: Array<{ builder: string; runs: unknown[] }>; summaries: Array<Record<string, unknown>> }>;
  };
  assert.equal(report.runs, 3);
  const [workload] = report.workloads;
  assert.deepEqual(workload!.builders.map((b) => [b.builder, b.runs.length]), [
    ['tsbuild --isolation=oci', 3], ['tsbuild --isolation=rootless', 3], ['tsbuild --isolation=none', 0], ['BuildKit', 3], ['Buildah', 3],
  ]);
  assert.deepEqual(workload!.summaries[1], {
    builder: 'tsbuild --isolation=rootless', layerKind: 'gzip', isolation: 'rootless', isolationNote: 'rootless (in a user namespace)',
    medianSeconds: 6, peakRssBytes: 210 * MiB, layerBytes: 3 * MiB, ratios: { BuildKit: 1.5, Buildah: 0.75 },
  });
  assert.deepEqual(workload!.summaries[2], { builder: 'tsbuild --isolation=none', layerKind: 'gzip', isolation: 'none', failed: 'could not be set up: umoci: not found' });
  assert.equal(workload!.summaries[3]!.ratios, undefined);
});
