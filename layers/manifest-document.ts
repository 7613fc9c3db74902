/**
 * Parsing and checking of manifest, index and config documents, whatever they were read from.
 * Errors carry the caller's code (`MANIFEST_INVALID` for a registry, `LAYOUT` for a layout…) and
 * name the document by the caller's label.
 */
import { TsbuildError, type ErrorCode } from './errors.js';
import { MediaType, type Descriptor, type ImageConfig, type IndexManifest, type Manifest } from './types.js';

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.ImageIndex, MediaType.DockerManifestList]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.ImageManifest, MediaType.DockerManifest]);
export const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.ImageConfig, MediaType.DockerConfig]);

export type ParsedDocument =
  | { kind: 'index'; mediaType: string; index: IndexManifest }
  | { kind: 'manifest'; mediaType: string; manifest: Manifest };

const DIGEST = /^sha256:[0-9a-f]{64}$/;

function invalid(code: ErrorCode, message: string): TsbuildError {
  return new TsbuildError(code, code === 'MANIFEST_INVALID' ? `manifest invalid: ${message}` : message);
}

/** A JSON object, or an error naming `label`. */
export function parseJsonObject(bytes: Buffer, label: string, code: ErrorCode): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw invalid(code, `${label} is not a JSON object`);
  return json as Record<string, unknown>;
}

/**
 * Parses a manifest or index and decides its media type: the document's own `mediaType`, else the
 * one it was served or listed with, else its shape (`manifests` → OCI index, `config` → OCI
 * manifest). Every descriptor it lists is checked.
 */
export function parseManifestDocument(bytes: Buffer, declared: string | undefined, label: string, code: ErrorCode = 'MANIFEST_INVALID'): ParsedDocument {
  const doc = parseJsonObject(bytes, label, code);
  const own = typeof doc.mediaType === 'string' && doc.mediaType !== '' ? doc.mediaType : undefined;
  const known = (type: string | undefined): type is string => type !== undefined && (INDEX_MEDIA_TYPES.has(type) || MANIFEST_MEDIA_TYPES.has(type));
  const shape = Array.isArray(doc.manifests) ? MediaType.ImageIndex : doc.config !== undefined ? MediaType.ImageManifest : undefined;
  const mediaType = known(own) ? own : known(declared) ? declared : shape ?? own ?? declared ?? 'unknown';
  if (!known(mediaType)) {
    throw invalid(code, `${label} has unsupported media type ${mediaType} (expected an OCI or Docker schema 2 manifest or index)`);
  }
  if (doc.schemaVersion !== 2) throw invalid(code, `${label} has schemaVersion ${String(doc.schemaVersion)}, expected 2`);
  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid(code, `${label} is not a valid image index`);
    for (const entry of doc.manifests) checkDescriptor(entry, label, code);
    return { kind: 'index', mediaType, index: doc as unknown as IndexManifest };
  }
  if (typeof doc.config !== 'object' || !Array.isArray(doc.layers)) throw invalid(code, `${label} is not a valid image manifest`);
  for (const entry of [doc.config, ...doc.layers]) checkDescriptor(entry, label, code);
  return { kind: 'manifest', mediaType, manifest: doc as unknown as Manifest };
}

/** Checks a descriptor read from a document before its digest goes into a URL or a path. */
export function checkDescriptor(value: unknown, label: string, code: ErrorCode = 'MANIFEST_INVALID'): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.mediaType !== 'string' ||
    typeof d.digest !== 'string' ||
    !DIGEST.test(d.digest) ||
    typeof d.size !== 'number' ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  ) {
    throw invalid(code, `${label} lists a malformed or non-sha256 descriptor`);
  }
  return d as Descriptor;
}

/**
 * Parses an image config and checks it against its manifest: a container image config media type,
 * `os` and `architecture`, and one diff_id per layer.
 */
export function parseImageConfig(bytes: Buffer, manifest: Manifest, label: string, code: ErrorCode = 'MANIFEST_INVALID'): ImageConfig {
  if (!CONFIG_MEDIA_TYPES.has(manifest.config.mediaType)) {
    throw invalid(code, `${label} is not a container image (config media type ${manifest.config.mediaType})`);
  }
  const config = parseJsonObject(bytes, `the config ${manifest.config.digest} of ${label}`, code) as Partial<ImageConfig>;
  const diffIds = config.rootfs?.diff_ids;
  if (typeof config.os !== 'string' || typeof config.architecture !== 'string') {
    throw invalid(code, `the config ${manifest.config.digest} of ${label} is not an image config (no os/architecture)`);
  }
  if (!Array.isArray(diffIds) || !diffIds.every((id) => typeof id === 'string' && DIGEST.test(id))) {
    throw invalid(code, `the config ${manifest.config.digest} of ${label} has no valid rootfs.diff_ids`);
  }
  if (diffIds.length !== manifest.layers.length) {
    throw invalid(code, `${label} has ${manifest.layers.length} layers but ${diffIds.length} diff_ids`);
  }
  return config as ImageConfig;
}
