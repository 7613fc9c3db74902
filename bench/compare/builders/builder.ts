import type { Workload } from '../workloads.js';

export interface BuildMeasure {
  /** Wall time of the build command, from start to exit. */
  readonly seconds: number;
  /** Peak resident set size of the build process in bytes, where measured. */
  readonly peakRssBytes?: number;
  /** Bytes of the layers the build added on top of its base, where cheaply known. */
  readonly layerBytes?: number;
  /** How tsbuild says it isolated RUN steps, and why (its `note: isolation:` line, without the prefix). */
  readonly isolation?: string;
}

/** One of the compared builders, driven through its command-line interface. */
export interface Builder {
  readonly name: string;
  /** The builder's version and how it runs RUN steps, once `prepare` succeeded. */
  readonly description: string;
  /** What `layerBytes` counts, e.g. "gzip" or "uncompressed". */
  readonly layerKind: string;
  /** The `--isolation` value of a tsbuild row; undefined for the builders tsbuild is compared with. */
  readonly isolation?: string;
  /** Starts what the builder needs and pulls `bases`, so that no measured build pulls its base. */
  prepare(bases: readonly string[]): Promise<void>;
  /**
   * Builds `workload` once: with an empty step cache, or for a warm workload with the cache of
   * this builder's earlier builds of it. Everything set up or cleaned around the build is left
   * out of `seconds`.
   */
  build(workload: Workload): Promise<BuildMeasure>;
  /** Stops what `prepare` started and removes the builder's files. */
  close(): Promise<void>;
}

/** The image name a builder gives its build of a workload. */
export function imageName(workload: Workload): string {
  return `bench-${workload.id}:latest`;
}
