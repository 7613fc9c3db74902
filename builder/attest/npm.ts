/**
 * npm packages: every `node_modules/NAME/package.json` (and `node_modules/@SCOPE/NAME/package.json`)
 * is an installed package; `package-lock.json` files add the production packages they pin that are
 * not found installed.
 */
import { packageUrl, type InstalledPackage } from './package-url.js';
import type { SparseRootfs } from './sparse-rootfs.js';

const INSTALLED_MANIFEST = /(?:^|\/)node_modules\/(?:@[^/]+\/)?[^/.@][^/]*\/package\.json$/;
const LOCKFILE = /(?:^|\/)(?:package-lock\.json|node_modules\/\.package-lock\.json)$/;

/** Whether a layer path is an installed package's manifest or a lockfile, for SparseRootfs to keep. */
export function isNpmDatabase(path: string): boolean {
  return INSTALLED_MANIFEST.test(path) || LOCKFILE.test(path);
}

/**
 * An installed package.json cut down to what the SBOM reads of it, so that a tree of thousands of
 * packages is held in memory as a few dozen bytes each. Lockfiles and anything unparsable stay whole.
 */
export function slimNpmManifest(path: string, content: Buffer): Buffer {
  if (!INSTALLED_MANIFEST.test(path)) return content;
  const manifest = parseJsonObject(content.toString('utf8'));
  if (!manifest) return content;
  return Buffer.from(JSON.stringify({ name: manifest.name, version: manifest.version, license: manifest.license, licenses: manifest.licenses }));
}

export function readNpmPackages(rootfs: SparseRootfs): InstalledPackage[] {
  const byPurl = new Map<string, InstalledPackage>();
  for (const file of rootfs.filesMatching((p) => INSTALLED_MANIFEST.test(p))) {
    const found = parseInstalledManifest(file.content.toString('utf8'), `/${file.path}`);
    if (found && !byPurl.has(found.purl)) byPurl.set(found.purl, found);
  }
  for (const file of rootfs.filesMatching((p) => LOCKFILE.test(p))) {
    for (const found of parsePackageLock(file.content.toString('utf8'), `/${file.path}`)) {
      if (!byPurl.has(found.purl)) byPurl.set(found.purl, found);
    }
  }
  return [...byPurl.values()];
}

/** The package a `package.json` describes; undefined when it is not JSON or names no version. */
export function parseInstalledManifest(text: string, foundIn: string): InstalledPackage | undefined {
  const manifest = parseJsonObject(text);
  if (!manifest || typeof manifest.name !== 'string' || typeof manifest.version !== 'string') return undefined;
  return npmPackage(manifest.name, manifest.version, declaredLicense(manifest), foundIn);
}

/** The packages a lockfile pins (lockfileVersion 1, 2 and 3), without dev-only, extraneous and linked ones. */
export function parsePackageLock(text: string, foundIn: string): InstalledPackage[] {
  const lock = parseJsonObject(text);
  if (!lock) return [];
  const found: InstalledPackage[] = [];
  if (isObject(lock.packages)) {
    for (const [location, entry] of Object.entries(lock.packages)) {
      if (location === '' || !isObject(entry) || entry.dev === true || entry.extraneous === true || entry.link === true) continue;
      const name = typeof entry.name === 'string' ? entry.name : location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length);
      if (typeof entry.version === 'string' && name !== '') found.push(npmPackage(name, entry.version, declaredLicense(entry), foundIn));
    }
    return found;
  }
  const walk = (dependencies: unknown): void => {
    if (!isObject(dependencies)) return;
    for (const [name, entry] of Object.entries(dependencies)) {
      if (!isObject(entry) || entry.dev === true || entry.extraneous === true) continue;
      if (typeof entry.version === 'string' && !entry.version.startsWith('file:')) found.push(npmPackage(name, entry.version, undefined, foundIn));
      walk(entry.dependencies);
    }
  };
  walk(lock.dependencies);
  return found;
}

function npmPackage(fullName: string, version: string, license: string | undefined, foundIn: string): InstalledPackage {
  const slash = fullName.startsWith('@') ? fullName.indexOf('/') : -1;
  const namespace = slash > 0 ? fullName.slice(0, slash) : undefined;
  const name = slash > 0 ? fullName.slice(slash + 1) : fullName;
  return {
    type: 'npm',
    name: fullName,
    version,
    foundIn,
    ...(license ? { license } : {}),
    purl: packageUrl({ type: 'npm', ...(namespace ? { namespace } : {}), name, version }),
  };
}

/** `license` as a string or `{ type }`, or the old `licenses: [{ type }]` list, joined with OR. */
function declaredLicense(manifest: Record<string, unknown>): string | undefined {
  const typeOf = (value: unknown): string | undefined => (typeof value === 'string' ? value : isObject(value) && typeof value.type === 'string' ? value.type : undefined);
  const single = typeOf(manifest.license);
  if (single) return single;
  if (!Array.isArray(manifest.licenses)) return undefined;
  const all = manifest.licenses.map(typeOf).filter((t): t is string => t !== undefined);
  if (all.length === 0) return undefined;
  return all.length === 1 ? all[0] : all.map((t) => (/\s/.test(t) ? `(${t})` : t)).join(' OR ');
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
