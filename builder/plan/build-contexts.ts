import path from 'node:path';
import { TsbuildError } from '../../layers/errors.js';

/** A named context from `--build-context NAME=VALUE`. */
export type NamedContext =
  | { readonly kind: 'oci-layout'; readonly name: string; readonly layoutDir: string; readonly reference: string }
  | { readonly kind: 'local'; readonly name: string; readonly dir: string };

/**
 * Parses `--build-context` values: `NAME=oci-layout://DIR[:TAG|@sha256:…]` for an image in an OCI
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
    throw new TsbuildError('BAD_BUILD_CONTEXT', `--build-context ${name}: unsupported source "${scheme[1]}://" (supported: oci-layout://DIR[:TAG], or a local directory)`);
  }
  const rest = target.slice('oci-layout://'.length);
  const at = rest.lastIndexOf('@');
  if (at > 0) return { kind: 'oci-layout', name, layoutDir: path.resolve(cwd, rest.slice(0, at)), reference: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  const hasTag = colon > 0 && !rest.slice(colon + 1).includes('/');
  return {
    kind: 'oci-layout',
    name,
    layoutDir: path.resolve(cwd, hasTag ? rest.slice(0, colon) : rest),
    reference: hasTag ? rest.slice(colon + 1) : 'latest',
  };
}
