import { dockerExporter, type DockerOutput } from './docker-exporter.js';
import { refusal, type BuildArtifact, type ExportContext, type Exporter, type PlannedBuild, type WrittenPath } from './exporter.js';
import { localExporter, type LocalOutput } from './local-exporter.js';
import { ociExporter, type OciOutput } from './oci-exporter.js';
import type { OutputFields } from './output-fields.js';
import { registryExporter, type RegistryOutput } from './registry-exporter.js';
import { storeExporter, type StoreOutput } from './store-exporter.js';
import { tarExporter, type TarOutput } from './tar-exporter.js';

/** Where a built image goes: one `--output`. */
export type OutputSpec = OciOutput | DockerOutput | RegistryOutput | LocalOutput | TarOutput;

/** Where an artifact can be exported: an `--output`, or the default local store. */
export type ExportTarget = OutputSpec | StoreOutput;

type ExporterOf<T extends ExportTarget['type']> = Exporter<Extract<ExportTarget, { type: T }>>;

/** Every output type, by the name `--output type=NAME` gives it. */
const outputTypes: { readonly [T in OutputSpec['type']]: ExporterOf<T> } = {
  oci: ociExporter,
  docker: dockerExporter,
  registry: registryExporter,
  local: localExporter,
  tar: tarExporter,
};

/** The exporter of a target. */
function exporterOf<T extends ExportTarget>(target: T): Exporter<T> {
  const exporter = target.type === 'store' ? storeExporter : outputTypes[target.type];
  return exporter as unknown as Exporter<T>;
}

export function isOutputType(type: string): type is OutputSpec['type'] {
  return Object.hasOwn(outputTypes, type);
}

/** Reads the fields of an `--output` value of a known type. */
export function parseOutputFields(type: OutputSpec['type'], fields: OutputFields): OutputSpec {
  return (outputTypes[type] as Exporter<OutputSpec>).parse(fields);
}

/** `type=oci,dest=…` and the others, for help texts and errors. */
export function outputUsages(): string[] {
  return Object.values(outputTypes).map((exporter) => exporter.usage);
}

/**
 * Checks every output against what the build will make, before anything runs: each one on its
 * own, and together (stdout takes one output only).
 */
export function checkOutputs(targets: readonly ExportTarget[], build: PlannedBuild): void {
  for (const target of targets) exporterOf(target).check(target, build);
  const toStdout = targets.filter((t) => 'dest' in t && t.dest === '-');
  if (toStdout.length > 1) throw refusal(`only one output can write to stdout (dest=-), and ${toStdout.length} do: give the others dest=FILE`);
  if (!build.annotations.isEmpty && !targets.some((t) => t.type === 'oci' || t.type === 'registry' || t.type === 'store')) {
    throw refusal('--annotation needs an image output: type=local and type=tar write files, not an image; add --output type=oci or type=registry');
  }
}

/** The local path a target writes, if any. */
export function writtenPath(target: ExportTarget): WrittenPath | undefined {
  return exporterOf(target).writes(target);
}

/** Writes the artifact to one target and says where it went. */
export function exportArtifact(artifact: BuildArtifact, target: ExportTarget, context: ExportContext): Promise<string> {
  return exporterOf(target).export(artifact, target, context);
}
