/** Alpine packages from apk's database, `/lib/apk/db/installed`: one record per package, `K:value` lines. */
import { distroQualifier, type Distro } from './os-release.js';
import { packageUrl, type InstalledPackage } from './package-url.js';
import type { SparseRootfs } from './sparse-rootfs.js';

const INSTALLED = 'lib/apk/db/installed';

/** Whether a layer path may be apk's database (by suffix: `/lib` may be a symlink to `usr/lib`). */
export function isApkDatabase(path: string): boolean {
  return path.endsWith('apk/db/installed');
}

export function readApkPackages(rootfs: SparseRootfs, distro: Distro | undefined): InstalledPackage[] {
  const installed = rootfs.readFile(INSTALLED);
  return installed ? parseApkInstalled(installed.toString('utf8'), `/${INSTALLED}`, distro) : [];
}

export function parseApkInstalled(text: string, foundIn: string, distro: Distro | undefined): InstalledPackage[] {
  const packages: InstalledPackage[] = [];
  for (const record of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of record.split('\n')) {
      // Per-file lines (F:, R:, Z:, a:, M:) repeat; only the package's own fields, which come first, are read.
      if (line.length >= 2 && line[1] === ':' && !fields.has(line[0]!)) fields.set(line[0]!, line.slice(2).trim());
    }
    const name = fields.get('P');
    const version = fields.get('V');
    if (!name || !version) continue;
    const license = fields.get('L');
    const origin = fields.get('o');
    packages.push({
      type: 'apk',
      name,
      version,
      foundIn,
      ...(license ? { license } : {}),
      purl: packageUrl({
        type: 'apk',
        namespace: distro?.id ?? 'alpine',
        name,
        version,
        qualifiers: { arch: fields.get('A'), distro: distroQualifier(distro), upstream: origin !== name ? origin : undefined },
      }),
    });
  }
  return packages;
}
