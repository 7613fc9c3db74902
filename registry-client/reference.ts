import { isIP } from 'node:net';
import { TsbuildError } from '../layers/errors.js';
import type { Digest } from '../layers/types.js';

/** A parsed image reference: `registry/repository[:tag][@digest]`, normalized the way Docker does. */
export interface ImageReference {
  /** Registry host with optional port, e.g. `docker.io`, `localhost:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path, e.g. `library/alpine`. */
  readonly repository: string;
  /** Undefined only when the reference names a digest without a tag. */
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** Host that actually serves Docker Hub's distribution API. */
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, 'index.docker.io', DOCKER_HUB_API_HOST]);

// The distribution-spec rules (spec.md, "Pulling manifests").
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_PATTERN = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// A DNS label, then an optional port; or a bracketed IPv6 address with an optional port.
const HOST_LABEL = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_PATTERN = new RegExp(`^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
/** Docker's limit on the length of `registry/repository`. */
const MAX_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

function bad(input: string, why: string): TsbuildError {
  return new TsbuildError('BAD_REFERENCE', `invalid image reference ${JSON.stringify(input)}: ${why}`);
}

/**
 * Parses `[registry/]repository[:tag][@sha256:hex]`. The first path component is a registry when it
 * contains `.` or `:`, is `localhost`, or has upper-case letters; otherwise the registry is Docker Hub,
 * where single-component names live under `library/`. Without tag and digest the tag is `latest`.
 */
export function parseReference(input: string): ImageReference {
  if (input === '') throw bad(input, 'empty');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    const digestText = rest.slice(at + 1);
    if (!DIGEST_PATTERN.test(digestText)) throw bad(input, 'digest must be sha256: and 64 lowercase hex digits');
    digest = digestText as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    if (!isValidTag(tag)) throw bad(input, `invalid tag ${JSON.stringify(tag)}`);
    rest = rest.slice(0, colon);
  }

  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN_PATTERN.test(first)) throw bad(input, `invalid registry host ${JSON.stringify(first)}`);
      registry = DOCKER_HUB_ALIASES.has(first) ? DOCKER_HUB : first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (repository === '' || repository === 'library/') throw bad(input, 'missing repository name');
  if (!isValidRepositoryName(repository)) {
    const why = repository !== repository.toLowerCase() ? 'repository name must be lowercase' : `invalid repository name ${JSON.stringify(repository)}`;
    throw bad(input, why);
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) throw bad(input, `name longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** The canonical string, e.g. `docker.io/library/alpine:latest` or `localhost:5000/a@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** What to ask `/v2/<name>/manifests/<target>` for: the digest when there is one, else the tag. */
export function manifestTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/** The host serving a registry's API: Docker Hub's names map to its API host. */
export function registryApiHost(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry) ? DOCKER_HUB_API_HOST : registry;
}

/** True for Docker Hub under any of its names. */
export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_ALIASES.has(registry);
}

/** The host without its port, brackets removed from IPv6 literals. */
export function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 || host.indexOf(':') !== colon ? host : host.slice(0, colon);
}

/** Registries reached over plain HTTP unless told otherwise: localhost, 127.0.0.0/8 and ::1, as Docker does. */
export function isLoopbackRegistry(host: string): boolean {
  const name = hostName(host).toLowerCase();
  if (name === 'localhost') return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * The API base URL of a registry: HTTPS, except plain HTTP for loopback hosts or when `insecure` is
 * true. `insecure: false` forces HTTPS even for loopback hosts.
 */
export function registryBaseUrl(registry: string, insecure?: boolean): string {
  const plain = insecure ?? isLoopbackRegistry(registry);
  return `${plain ? 'http' : 'https'}://${registryApiHost(registry)}`;
}
