import type { Readable } from 'node:stream';
import { TsbuildError } from './errors.js';
import type { OciLayout } from './oci-layout.js';
import {
  MediaType,
  RefNameAnnotation,
  type Descriptor,
  type Digest,
  type ImageConfig,
  type ImageIndex,
  type Manifest,
  type Platform,
} from './types.js';
import { formatPlatform, platformMatches } from './platform.js';

/** Which image of a layout to read: a digest wins over a tag; neither means `latest`. */
export interface ImageSelector {
  tag?: string;
  digest?: Digest;
}

/** One platform's image, resolved down to its manifest and config. */
export interface LayoutImage {
  manifestDescriptor: Descriptor;
  manifest: Manifest;
  configDescriptor: Descriptor;
  config: ImageConfig;
  layers: Descriptor[];
  /** Streams a layer blob as stored (still compressed); the stream fails if its digest does not match. */
  openLayer(layer: Descriptor): Readable;
}

const INDEX_TYPES = new Set<string>([MediaType.ImageIndex, MediaType.DockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaType.ImageManifest, MediaType.DockerManifest]);
const CONFIG_TYPES = new Set<string>([MediaType.ImageConfig, MediaType.DockerConfig]);
const SCHEME = 'oci-layout://';
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/** Indexes nested deeper than this are refused; real images use one or two levels. */
const MAX_DEPTH = 8;

type Node = { kind: 'index'; index: ImageIndex } | { kind: 'manifest'; manifest: Manifest };

/** Splits `oci-layout://DIR[:TAG][@sha256:HEX]` (the scheme is optional) into its parts. */
export function parseOciLayoutSource(source: string): { dir: string } & ImageSelector {
  let rest = source.startsWith(SCHEME) ? source.slice(SCHEME.length) : source;
  const result: ImageSelector = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    if (!DIGEST.test(digest)) throw new TsbuildError('LAYOUT', `invalid digest "${digest}" in "${source}"`);
    result.digest = digest as Digest;
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && TAG.test(rest.slice(colon + 1))) {
    result.tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (rest === '') throw new TsbuildError('LAYOUT', `no directory in OCI layout source "${source}"`);
  return { dir: rest, ...result };
}

/**
 * Reads one image out of an OCI layout: picks the index entry by digest or by its ref.name tag,
 * descends through (possibly nested) OCI indexes or Docker manifest lists to the manifest for
 * `platform`, and reads its config.
 */
export async function readLayoutImage(layout: OciLayout, selector: ImageSelector, platform: Platform): Promise<LayoutImage> {
  const reader = new LayoutReader(layout);
  const { descriptor, label } = await reader.selectRoot(selector);
  const found = await reader.findPlatform(descriptor, platform, label);
  const { manifest, config } = found;
  return {
    manifestDescriptor: found.descriptor,
    manifest,
    configDescriptor: manifest.config,
    config,
    layers: manifest.layers,
    openLayer: (layer) => layout.openBlob(layer.digest),
  };
}

interface Candidate {
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
}

class LayoutReader {
  constructor(private readonly layout: OciLayout) {}

  /** The index.json entry named by the selector, and a label for messages. */
  async selectRoot(selector: ImageSelector): Promise<{ descriptor: Descriptor; label: string }> {
    const entries = (await this.layout.readIndex()).manifests;
    if (selector.digest !== undefined) {
      const label = `${this.layout.dir}@${selector.digest}`;
      const descriptor = await this.findDigest(entries, selector.digest, 0);
      if (descriptor === undefined) {
        throw new TsbuildError('IMAGE_NOT_FOUND', `OCI layout ${this.layout.dir} has no manifest ${selector.digest}`);
      }
      return { descriptor, label };
    }
    const tag = selector.tag ?? 'latest';
    const label = `${this.layout.dir}:${tag}`;
    const tagged = entries.filter((entry) => entry.annotations?.[RefNameAnnotation] === tag);
    if (tagged.length === 0 && selector.tag === undefined && entries.length === 1) {
      // No tag asked for and only one image: that is the one meant.
      return { descriptor: entries[0] as Descriptor, label: this.layout.dir };
    }
    const first = tagged[0];
    if (first === undefined) {
      const tags = entries.flatMap((entry) => entry.annotations?.[RefNameAnnotation] ?? []);
      const known = tags.length > 0 ? `tags: ${tags.join(', ')}` : 'it has no tagged images';
      throw new TsbuildError('IMAGE_NOT_FOUND', `OCI layout ${this.layout.dir} has no image tagged "${tag}" (${known})`);
    }
    if (tagged.some((entry) => entry.digest !== first.digest)) {
      throw new TsbuildError('LAYOUT', `OCI layout ${this.layout.dir} lists different images under the tag "${tag}"`);
    }
    return { descriptor: first, label };
  }

  /** Walks from `root` to the manifest whose platform matches, with an error listing what exists. */
  async findPlatform(root: Descriptor, wanted: Platform, label: string): Promise<Candidate> {
    const seen: Platform[] = [];
    const found = await this.search(root, wanted, seen, 0);
    if (found !== undefined) return found;
    // Attestation manifests are listed with the platform unknown/unknown: not worth naming.
    const real = seen.filter((platform) => platform.os !== 'unknown');
    const available = [...new Set(real.map(formatPlatform))].join(', ') || 'none';
    throw new TsbuildError(
      'PLATFORM',
      `${label} has no image for platform ${formatPlatform(wanted)} (available: ${available})`,
    );
  }

  private async search(descriptor: Descriptor, wanted: Platform, seen: Platform[], depth: number): Promise<Candidate | undefined> {
    const node = await this.load(descriptor, depth);
    if (node.kind === 'manifest') {
      const config = await this.loadConfig(descriptor, node.manifest);
      // A platform stated by the index entry wins: some configs leave out the variant.
      const platform = descriptor.platform ?? config;
      if (!platformMatches(platform, wanted)) {
        seen.push(platform);
        return undefined;
      }
      return { descriptor, manifest: node.manifest, config };
    }
    for (const child of node.index.manifests) {
      // Skip entries stating another platform without reading them.
      if (child.platform !== undefined && MANIFEST_TYPES.has(child.mediaType) && !platformMatches(child.platform, wanted)) {
        seen.push(child.platform);
        continue;
      }
      const found = await this.search(child, wanted, seen, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Finds a descriptor by digest among `entries` and, recursively, inside the indexes they list. */
  private async findDigest(entries: Descriptor[], digest: Digest, depth: number): Promise<Descriptor | undefined> {
    const direct = entries.find((entry) => entry.digest === digest);
    if (direct !== undefined) return direct;
    for (const entry of entries) {
      if (MANIFEST_TYPES.has(entry.mediaType)) continue;
      const node = await this.load(entry, depth);
      if (node.kind !== 'index') continue;
      const found = await this.findDigest(node.index.manifests, digest, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /**
   * Reads an index or manifest. The kind comes from the descriptor's media type; when that is
   * not one of the known kinds, the document's own `mediaType` field decides.
   */
  private async load(descriptor: Descriptor, depth: number): Promise<Node> {
    if (depth > MAX_DEPTH) {
      throw new TsbuildError('LAYOUT', `OCI layout ${this.layout.dir}: indexes nested deeper than ${MAX_DEPTH} levels`);
    }
    const body = await this.readDocument(descriptor);
    const declared = typeof body.mediaType === 'string' ? body.mediaType : undefined;
    const mediaType = INDEX_TYPES.has(descriptor.mediaType) || MANIFEST_TYPES.has(descriptor.mediaType)
      ? descriptor.mediaType
      : declared;
    if (mediaType !== undefined && INDEX_TYPES.has(mediaType)) {
      if (body.schemaVersion !== 2 || !Array.isArray(body.manifests)) throw this.malformed(descriptor, 'image index');
      return { kind: 'index', index: body as unknown as ImageIndex };
    }
    if (mediaType !== undefined && MANIFEST_TYPES.has(mediaType)) {
      if (body.schemaVersion !== 2 || !isDescriptor(body.config) || !Array.isArray(body.layers) || !body.layers.every(isDescriptor)) {
        throw this.malformed(descriptor, 'image manifest');
      }
      return { kind: 'manifest', manifest: body as unknown as Manifest };
    }
    throw new TsbuildError(
      'LAYOUT',
      `${descriptor.digest} in OCI layout ${this.layout.dir} has unsupported media type ${mediaType ?? descriptor.mediaType}`,
    );
  }

  private async loadConfig(manifestDescriptor: Descriptor, manifest: Manifest): Promise<ImageConfig> {
    const { config: descriptor, layers } = manifest;
    if (!CONFIG_TYPES.has(descriptor.mediaType)) {
      throw new TsbuildError(
        'LAYOUT',
        `${manifestDescriptor.digest} in OCI layout ${this.layout.dir} is not a container image (config media type ${descriptor.mediaType})`,
      );
    }
    const config = (await this.readDocument(descriptor)) as Partial<ImageConfig>;
    const diffIds = config.rootfs?.diff_ids;
    if (typeof config.os !== 'string' || typeof config.architecture !== 'string' || !Array.isArray(diffIds)) {
      throw this.malformed(descriptor, 'image config');
    }
    if (diffIds.length !== layers.length) {
      throw new TsbuildError(
        'LAYOUT',
        `image ${manifestDescriptor.digest} in OCI layout ${this.layout.dir} has ${layers.length} layers but ${diffIds.length} diff_ids`,
      );
    }
    return config as ImageConfig;
  }

  /** A JSON object blob, checked against the descriptor's size (the digest is checked on read). */
  private async readDocument(descriptor: Descriptor): Promise<Record<string, unknown>> {
    const bytes = await this.layout.readBlob(descriptor.digest);
    if (bytes.length !== descriptor.size) {
      throw new TsbuildError(
        'LAYOUT',
        `blob ${descriptor.digest} in OCI layout ${this.layout.dir} has ${bytes.length} bytes, its descriptor says ${descriptor.size}`,
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      value = undefined;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw this.malformed(descriptor, 'JSON document');
    return value as Record<string, unknown>;
  }

  private malformed(descriptor: Descriptor, what: string): TsbuildError {
    return new TsbuildError('LAYOUT', `blob ${descriptor.digest} in OCI layout ${this.layout.dir} is not a valid ${what}`);
  }
}

function isDescriptor(value: unknown): value is Descriptor {
  if (typeof value !== 'object' || value === null) return false;
  const { mediaType, digest, size } = value as Record<string, unknown>;
  return typeof mediaType === 'string' && typeof digest === 'string' && DIGEST.test(digest) && typeof size === 'number';
}
