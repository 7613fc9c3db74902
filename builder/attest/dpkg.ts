/**
 * Debian packages from dpkg's database: `/var/lib/dpkg/status`, and `/var/lib/dpkg/status.d/*`, where
 * images built without dpkg (distroless) record one package per file.
 */
import { parseStanzas } from './deb822.js';
import { distroQualifier, type Distro } from './os-release.js';
import { packageUrl, type InstalledPackage } from './package-url.js';
import type { SparseRootfs } from './sparse-rootfs.js';

const STATUS = 'var/lib/dpkg/status';
const STATUS_DIR = 'var/lib/dpkg/status.d';
/** States in which a package's files are not (or no longer) on disk. */
const ABSENT_STATES = new Set(['not-installed', 'config-files']);

/**
 * Whether a layer path may be one of dpkg's database files, for SparseRootfs to keep. Matched by
 * suffix: `/var` or `/var/lib` may be a symlink to where the files really are.
 */
export function isDpkgDatabase(path: string): boolean {
  return path.endsWith('dpkg/status') || (path.includes('dpkg/status.d/') && !path.endsWith('.md5sums'));
}

export function readDpkgPackages(rootfs: SparseRootfs, distro: Distro | undefined): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  const status = rootfs.readFile(STATUS);
  if (status) packages.push(...parseDpkgStatus(status.toString('utf8'), `/${STATUS}`, distro));
  const dir = rootfs.resolve(STATUS_DIR);
  if (dir !== undefined) {
    for (const file of rootfs.filesMatching((p) => p.startsWith(`${dir}/`) && !p.slice(dir.length + 1).includes('/') && !p.endsWith('.md5sums'))) {
      packages.push(...parseDpkgStatus(file.content.toString('utf8'), `/${file.path}`, distro));
    }
  }
  return packages;
}

/** The installed packages a dpkg status file lists. A stanza without `Status` (status.d) counts as installed. */
export function parseDpkgStatus(text: string, foundIn: string, distro: Distro | undefined): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const stanza of parseStanzas(text)) {
    const name = stanza.get('package');
    const version = stanza.get('version');
    if (!name || !version) continue;
    const status = stanza.get('status');
    if (status !== undefined && ABSENT_STATES.has(status.split(/\s+/)[2] ?? '')) continue;
    const source = stanza.get('source')?.split(/\s+/)[0];
    packages.push({
      type: 'deb',
      name,
      version,
      foundIn,
      purl: packageUrl({
        type: 'deb',
        namespace: distro?.id ?? 'debian',
        name,
        version,
        qualifiers: { arch: stanza.get('architecture'), distro: distroQualifier(distro), upstream: source !== name ? source : undefined },
      }),
    });
  }
  return packages;
}
