import { TsbuildError, type ErrorCode } from './errors.js';
import type { Image, ImageIndex, ImageOrIndex } from './image.js';
import { INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES, parseManifestDocument } from './manifest-document.js';
import { noMatchingPlatform, platformMatches } from './platform.js';
import type { Descriptor, Platform } from './types.js';

/** Indexes nested deeper than this are refused; real images use one or two levels. */
const MAX_DEPTH = 8;

/**
 * The image for `wanted` under `root`, wherever it is stored. Index entries are tried in order:
 * an entry stating another platform is skipped unread, nested indexes are searched, and a manifest
 * without a stated platform is matched by its config. The error names the platforms there are.
 */
export async function selectPlatform(root: ImageOrIndex, wanted: Platform, label: string, errorCode: ErrorCode): Promise<Image> {
  const seen: Platform[] = [];
  const matches = async (image: Image, stated: Platform | undefined): Promise<boolean> => {
    // A platform stated by the index entry wins: some configs leave out the variant.
    const platform = stated ?? (await image.config());
    if (platformMatches(platform, wanted)) return true;
    seen.push(platform);
    return false;
  };
  const search = async (index: ImageIndex, depth: number): Promise<Image | undefined> => {
    if (depth > MAX_DEPTH) throw new TsbuildError(errorCode, `${label}: indexes nested deeper than ${MAX_DEPTH} levels`);
    for (const entry of (await index.indexManifest()).manifests) {
      if (entry.platform !== undefined && !platformMatches(entry.platform, wanted)) {
        seen.push(entry.platform);
        continue;
      }
      const child = await indexEntry(index, entry, errorCode);
      const found = child.kind === 'index' ? await search(child.index, depth + 1) : (await matches(child.image, entry.platform)) ? child.image : undefined;
      if (found !== undefined) return found;
    }
    return undefined;
  };
  const found = root.kind === 'image' ? ((await matches(root.image, undefined)) ? root.image : undefined) : await search(root.index, 0);
  if (found === undefined) throw noMatchingPlatform(label, wanted, seen);
  return found;
}

/**
 * The image or nested index behind an index entry. The entry's media type says which; when it is
 * not a known one, the document itself decides.
 */
export async function indexEntry(index: ImageIndex, entry: Descriptor, errorCode: ErrorCode): Promise<ImageOrIndex> {
  if (INDEX_MEDIA_TYPES.has(entry.mediaType)) return { kind: 'index', index: await index.imageIndex(entry.digest) };
  const image = await index.image(entry.digest);
  if (MANIFEST_MEDIA_TYPES.has(entry.mediaType)) return { kind: 'image', image };
  const kind = parseManifestDocument(await image.rawManifest(), undefined, `${entry.digest}`, errorCode).kind;
  return kind === 'index' ? { kind: 'index', index: await index.imageIndex(entry.digest) } : { kind: 'image', image };
}
