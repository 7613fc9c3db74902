import type { Compression } from '../../layers/compression.js';
import type { Platform } from '../../layers/types.js';
import { hostPlatform } from '../plan/platform.js';
import { ImageAnnotations, parseAnnotation } from './annotations.js';
import { checkOutputs, type ExportTarget } from './exporters.js';
import type { PlannedBuild } from './exporter.js';
import { normalizedName } from './image-names.js';
import type { OutputSpec } from './output-spec.js';

export interface OutputRequest {
  readonly platforms?: readonly Platform[] | undefined;
  readonly tags?: readonly string[];
  readonly targets?: readonly OutputSpec[];
  readonly annotations?: readonly string[];
  readonly compression?: Compression | undefined;
  readonly stream?: NodeJS.WritableStream;
  /** The local store, for a build without outputs. */
  readonly storeDir: string;
}

export interface PreparedOutputs {
  readonly targets: readonly ExportTarget[];
  readonly annotations: ImageAnnotations;
}

/**
 * Reads and checks everything about where the image goes, before anything is built or written:
 * every `-t` name, every `--annotation`, and every output against the platforms, names and
 * annotations of the build. The default local store is the target when no output is given.
 */
export function prepareOutputs(request: OutputRequest): PreparedOutputs {
  const tags = request.tags ?? [];
  for (const tag of tags) normalizedName(tag);
  const annotations = new ImageAnnotations((request.annotations ?? []).flatMap(parseAnnotation));
  const platforms = request.platforms?.length ? request.platforms : [hostPlatform()];
  annotations.checkFor(platforms);
  const targets: ExportTarget[] = request.targets?.length ? [...request.targets] : [{ type: 'store', dest: request.storeDir }];
  const build: PlannedBuild = { platforms, tags, annotations, compression: request.compression ?? 'gzip', stdout: stdoutState(request.stream) };
  checkOutputs(targets, build);
  return { targets, annotations };
}

function stdoutState(stream: NodeJS.WritableStream | undefined): PlannedBuild['stdout'] {
  if (stream === undefined) return { usable: false, why: 'this build was given no output stream' };
  if ((stream as { isTTY?: boolean }).isTTY === true) return { usable: false, why: 'it is a terminal' };
  return { usable: true };
}
