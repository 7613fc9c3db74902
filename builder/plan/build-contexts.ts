import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';
import type { Descriptor, Digest } from '../../layers/types.js';
import { formatReference, parseReference } from '../../registry-client/reference.js';

/** A named context from `--build-context NAME=VALUE`. */
export type NamedContext =
  | { readonly kind: 'oci-layout'; readonly name: string; readonly layoutDir: string; readonly reference: string }
  | { readonly kind: 'local'; readonly name: string; readonly dir: string };

const digestPattern = /^sha256:[0-9a-f]{64}$/;

/**
 * Parses `--build-context` values: `NAME=oci-layout://DIR[:REF][@sha256:…]` for an image in an OCI
 * layout, or `NAME=DIR` for a local directory that `COPY --from=NAME` can read.
 */
export function parseBuildContexts(values: readonly string[], cwd: string): Map<string, NamedContext> {
  const contexts = new Map<string, NamedContext>();
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq <= 0 || eq === value.length - 1) {
      throw new TsbuildError('BAD_BUILD_CONTEXT', `invalid --build-context "${value}": expected NAME=VALUE`);
    }
    const name = value.slice(0, eq);
    const target = value.slice(eq + 1);
    if (contexts.has(name)) throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name} given twice`);
    contexts.set(name, parseTarget(name, target, cwd));
  }
  return contexts;
}

function parseTarget(name: string, target: string, cwd: string): NamedContext {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(target);
  if (!scheme) return { kind: 'local', name, dir: path.resolve(cwd, target) };
  if (scheme[1] !== 'oci-layout') {
    throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name}: unsupported source "${scheme[1]}://" (supported: oci-layout://DIR[:NAME:TAG][@sha256:DIGEST], or a local directory)`);
  }
  return { kind: 'oci-layout', name, ...parseLayoutSource(name, target.slice('oci-layout://'.length), cwd) };
}

/**
 * `DIR[:REF][@sha256:HEX]` as buildx reads it: the digest after the first `@`, then the reference
 * after the first `:` of what is left, so that REF may itself hold a colon (`app:1`). A digest wins
 * over a reference; neither means `latest`.
 */
function parseLayoutSource(name: string, source: string, cwd: string): { layoutDir: string; reference: string } {
  const [withRef, digest] = cutAt(source, '@');
  const [dir, ref] = cutAt(withRef, ':');
  if (dir === '') throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name}: no directory in "oci-layout://${source}"; write oci-layout://DIR[:NAME:TAG][@sha256:DIGEST]`);
  if (digest !== undefined && !digestPattern.test(digest)) {
    throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name}: invalid digest "${digest}" in "oci-layout://${source}"; expected sha256: and 64 hex digits`);
  }
  if (ref === '') throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name}: empty reference after ":" in "oci-layout://${source}"`);
  return { layoutDir: path.resolve(cwd, dir), reference: digest ?? ref ?? 'latest' };
}

function cutAt(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

const refNameKey = 'org.opencontainers.image.ref.name';
const imageNameKey = 'io.containerd.image.name';

/**
 * Which image of a layout a build context's reference names. A ref.name equal to the reference
 * comes first; else the entry whose `io.containerd.image.name` is the same image once normalised
 * (`app:1` is `docker.io/library/app:1`), as BuildKit's OCI exporter writes it, or whose ref.name
 * is that full name. With no match the reference stays a tag, and reading it names the tags
 * the layout has.
 */
export function layoutSelector(entries: readonly Descriptor[], reference: string): { tag?: string; digest?: Digest } {
  if (digestPattern.test(reference)) return { digest: reference as Digest };
  if (entries.some((e) => e.annotations?.[refNameKey] === reference)) return { tag: reference };
  const wanted = normalisedName(reference);
  if (wanted === undefined) return { tag: reference };
  const named = entries.filter((e) => [e.annotations?.[imageNameKey], e.annotations?.[refNameKey]].some((n) => n !== undefined && normalisedName(n) === wanted));
  const digests = new Set(named.map((e) => e.digest));
  if (digests.size === 1) return { digest: named[0]!.digest };
  if (digests.size > 1) throw new TsbuildError('BAD_BUILD_CONTEXT', `OCI layout lists different images as "${reference}"`);
  return { tag: reference };
}

function normalisedName(reference: string): string | undefined {
  try {
    const ref = parseReference(reference);
    return ref.digest === undefined ? formatReference(ref) : undefined;
  } catch {
    return undefined;
  }
}
