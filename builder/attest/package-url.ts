/**
 * Package URLs (purl, github.com/package-url/purl-spec): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`.
 * Each segment is percent-encoded; `:` may stay as it is, which keeps Debian epochs readable.
 */

/** One installed package found in the image, as the SBOM lists it. */
export interface InstalledPackage {
  /** The purl type: `deb`, `apk` or `npm`. */
  readonly type: 'deb' | 'apk' | 'npm';
  readonly name: string;
  readonly version: string;
  readonly purl: string;
  /** The license expression the package database declares, as written there. */
  readonly license?: string;
  /** Where in the image the package was found (the database file), for the SBOM's comments. */
  readonly foundIn: string;
}

export interface PackageUrlParts {
  readonly type: string;
  readonly namespace?: string;
  readonly name: string;
  readonly version?: string;
  /** Qualifiers with an empty value are left out; the rest are sorted by key, as the spec asks. */
  readonly qualifiers?: Readonly<Record<string, string | undefined>>;
}

export function packageUrl(parts: PackageUrlParts): string {
  const namespace = parts.namespace ? `${parts.namespace.split('/').map(encodeSegment).join('/')}/` : '';
  const version = parts.version ? `@${encodeSegment(parts.version)}` : '';
  const qualifiers = Object.entries(parts.qualifiers ?? {})
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key.toLowerCase()}=${encodeSegment(value)}`);
  return `pkg:${parts.type}/${namespace}${encodeSegment(parts.name)}${version}${qualifiers.length > 0 ? `?${qualifiers.join('&')}` : ''}`;
}

function encodeSegment(text: string): string {
  return encodeURIComponent(text).replace(/%3A/g, ':');
}
