import type { Compression } from '../../layers/compression.js';
import type { LayerOrigin } from '../../layers/image.js';
import { TsbuildError } from '../../layers/errors.js';
import type { Descriptor, Digest, Platform } from '../../layers/types.js';
import type { Workspace } from '../workspace/workspace.js';
import type { RegistrySettings } from '../registry/registry-access.js';
import type { RootfsCache } from '../rootfs/rootfs-cache.js';
import type { ImageAnnotations } from './annotations.js';
import type { AssembledImage } from './assemble.js';
import type { OutputFields } from './output-fields.js';

/** A finished build: the root descriptor (a manifest, or an index over platforms) and its images. */
export interface BuildArtifact {
  readonly root: Descriptor;
  readonly images: readonly AssembledImage[];
  /** The `-t` names as given. */
  readonly tags: readonly string[];
  /** The registry and repository each pulled base layer came from. */
  readonly layerOrigins: ReadonlyMap<Digest, LayerOrigin>;
}

/** What is known of a build before it runs: enough to refuse an output that could not take its result. */
export interface PlannedBuild {
  readonly platforms: readonly Platform[];
  /** The `-t` names as given (already checked). */
  readonly tags: readonly string[];
  readonly annotations: ImageAnnotations;
  readonly compression: Compression;
  /** Whether `dest=-` may write to the build's output stream, and why not when it may not. */
  readonly stdout: { readonly usable: true } | { readonly usable: false; readonly why: string };
}

/** Where an exporter writes and with what. Every blob of the artifact is in `workspace.layout`. */
export interface ExportContext {
  readonly workspace: Workspace;
  readonly registry: RegistrySettings;
  /** Unpacked layer stacks, shared with the build: where filesystem outputs read the final tree. */
  readonly rootfsCache: RootfsCache;
  /** Where `dest=-` writes. */
  readonly stdout?: NodeJS.WritableStream;
}

/** What one output writes on the local disk, for checks that must leave those paths alone. */
export interface WrittenPath {
  readonly path: string;
  readonly kind: 'file' | 'directory';
}

/**
 * One kind of output (`--output type=NAME`). Adding an output means adding one file with one of
 * these, and listing it in exporters.ts.
 */
export interface Exporter<S extends { readonly type: string }> {
  readonly type: S['type'];
  /** The `--output` fields this type takes, for `--help` and errors. */
  readonly usage: string;
  /** Reads the fields of an `--output` value of this type; unknown fields are refused by the caller. */
  parse(fields: OutputFields): S;
  /** Fails with a one-line error, before anything is built, when this output cannot take the build's result. */
  check(spec: S, build: PlannedBuild): void;
  /** The local path the output writes, if any. */
  writes(spec: S): WrittenPath | undefined;
  /** Writes the artifact and says where it went. Nothing is left half-written if this fails. */
  export(artifact: BuildArtifact, spec: S, context: ExportContext): Promise<string>;
}

/** `dest=-`: the build's output stream, which must exist and not be a terminal. */
export const STDOUT_DEST = '-';

/** Fails unless `dest=-` can be used; `what` names the output. */
export function checkStdout(dest: string, what: string, build: PlannedBuild): void {
  if (dest === STDOUT_DEST && !build.stdout.usable) throw refusal(`${what} with dest=- cannot write to stdout: ${build.stdout.why}; give dest=FILE`);
}

/** The error refusing an output before the build: what is wrong and what to do instead. */
export function refusal(message: string): TsbuildError {
  return new TsbuildError('BAD_OUTPUT', message);
}
