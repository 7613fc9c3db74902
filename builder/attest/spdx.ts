/**
 * An SPDX 2.3 JSON document (spdx.github.io/spdx-spec/v2.3) listing the packages found in an image.
 * Nothing in it depends on the clock or on the machine: `created` is the build's own time, and the
 * namespace is derived from the content, so a reproducible build gives a byte-identical SBOM.
 */
import { createHash } from 'node:crypto';
import { isLicenseExpression } from './license-expression.js';
import type { InstalledPackage } from './package-url.js';
import { toolVersion } from './tool-version.js';

export const SPDX_PREDICATE_TYPE = 'https://spdx.dev/Document';
const IMAGE_ID = 'SPDXRef-Image';

export interface SpdxSubject {
  /** What the document is named after: the image's first name, or its manifest digest. */
  readonly name: string;
  /** The image manifest's digest, recorded as the image package's checksum. */
  readonly manifestDigest: string;
  /** When the image was built, RFC 3339. */
  readonly created: string;
}

export function spdxDocument(subject: SpdxSubject, packages: readonly InstalledPackage[]): Record<string, unknown> {
  const sorted = [...packages].sort((a, b) => compare(`${a.type}\0${a.name}\0${a.version}\0${a.purl}`, `${b.type}\0${b.name}\0${b.version}\0${b.purl}`));
  const ids = new Set<string>();
  const entries = sorted.map((pkg) => {
    const id = uniqueId(pkg, ids);
    return { id, json: packageEntry(pkg, id) };
  });
  const image = {
    name: subject.name,
    SPDXID: IMAGE_ID,
    versionInfo: subject.manifestDigest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: subject.manifestDigest.replace(/^sha256:/, '') }],
    primaryPackagePurpose: 'CONTAINER',
  };
  const body = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: subject.name,
    creationInfo: { created: spdxTime(subject.created), creators: [`Tool: tsbuild-${toolVersion()}`] },
    packages: [image, ...entries.map((e) => e.json)],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: IMAGE_ID },
      ...entries.map((e) => ({ spdxElementId: IMAGE_ID, relationshipType: 'CONTAINS', relatedSpdxElement: e.id })),
    ],
  };
  // The namespace must be unique per document: a UUID-shaped hash of everything else in it.
  const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
  const uuid = `${hash.slice(0, 8)}-${hash.slice(8, 12)}-5${hash.slice(13, 16)}-${((parseInt(hash[16]!, 16) & 0x3) | 0x8).toString(16)}${hash.slice(17, 20)}-${hash.slice(20, 32)}`;
  const { packages: listed, relationships, ...head } = body;
  return { ...head, documentNamespace: `urn:uuid:${uuid}`, packages: listed, relationships };
}

function packageEntry(pkg: InstalledPackage, id: string): Record<string, unknown> {
  const license = pkg.license === undefined ? 'NOASSERTION' : isLicenseExpression(pkg.license) ? pkg.license : 'NOASSERTION';
  return {
    name: pkg.name,
    SPDXID: id,
    versionInfo: pkg.version,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: license,
    ...(pkg.license !== undefined && license === 'NOASSERTION' ? { licenseComments: `declared as "${pkg.license}", which is not an SPDX license expression` } : {}),
    copyrightText: 'NOASSERTION',
    sourceInfo: `found in ${pkg.foundIn}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: pkg.purl }],
  };
}

/** `SPDXRef-` ids allow letters, digits, `.` and `-`: the type and name, plus a hash of the purl to keep them apart. */
function uniqueId(pkg: InstalledPackage, taken: Set<string>): string {
  const readable = `${pkg.type}-${pkg.name}`.replace(/[^A-Za-z0-9.-]+/g, '-');
  const base = `SPDXRef-Package-${readable}-${createHash('sha256').update(pkg.purl).digest('hex').slice(0, 12)}`;
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

/** SPDX wants `YYYY-MM-DDThh:mm:ssZ`, without fractions of a second. */
function spdxTime(rfc3339: string): string {
  return `${new Date(rfc3339).toISOString().slice(0, 19)}Z`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
