import { TsbuildError } from '../layers/errors.js';
import { MediaType, type Descriptor } from '../layers/types.js';

const INDEX_TYPES = new Set<string>([MediaType.ImageIndex, MediaType.DockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaType.ImageManifest, MediaType.DockerManifest]);

/** The Accept header of manifest requests: OCI and Docker schema 2 manifests and indexes. */
export const MANIFEST_ACCEPT = [MediaType.ImageIndex, MediaType.ImageManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', ');

/** Registries may refuse larger manifests (distribution-spec); we refuse to read them. */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

export interface ParsedDocument {
  kind: 'index' | 'manifest';
  mediaType: string;
  json: Record<string, unknown>;
}

/**
 * Parses a manifest or index and decides its media type: the document's own `mediaType`, else the
 * one it was served or listed with, else its shape (`manifests` → OCI index, `config` → OCI manifest).
 */
export function parseManifestDocument(bytes: Buffer, declared: string | undefined, label: string): ParsedDocument {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} is not a JSON object`);
  }
  const doc = json as Record<string, unknown>;
  const own = typeof doc.mediaType === 'string' && doc.mediaType !== '' ? doc.mediaType : undefined;
  const known = (type: string | undefined): type is string => type !== undefined && (INDEX_TYPES.has(type) || MANIFEST_TYPES.has(type));
  const mediaType = known(own) ? own : known(declared) ? declared : Array.isArray(doc.manifests) ? MediaType.ImageIndex : doc.config !== undefined ? MediaType.ImageManifest : own ?? declared ?? 'unknown';
  if (!known(mediaType)) {
    throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} has unsupported media type ${mediaType} (expected an OCI or Docker schema 2 manifest or index)`);
  }
  if (doc.schemaVersion !== 2) throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} has schemaVersion ${String(doc.schemaVersion)}, expected 2`);
  const kind = INDEX_TYPES.has(mediaType) ? 'index' : 'manifest';
  if (kind === 'index' ? !Array.isArray(doc.manifests) : typeof doc.config !== 'object' || !Array.isArray(doc.layers)) {
    throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} is not a valid ${kind === 'index' ? 'image index' : 'image manifest'}`);
  }
  return { kind, mediaType, json: doc };
}

/** A header's media type without parameters (`; charset=…`). */
export function bareMediaType(value: string | string[] | undefined): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  const bare = first?.split(';')[0]?.trim();
  return bare === undefined || bare === '' ? undefined : bare;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Checks a descriptor read from a registry document before its digest goes into a URL or a path. */
export function checkDescriptor(value: unknown, label: string): Descriptor {
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
    throw new TsbuildError('MANIFEST_INVALID', `manifest invalid: ${label} lists a malformed or non-sha256 descriptor`);
  }
  return d as Descriptor;
}
