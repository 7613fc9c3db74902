/** The SBOM of a built image: its package databases read from the layers, as an SPDX document. */
import { isApkDatabase, readApkPackages } from './apk.js';
import { isDpkgDatabase, readDpkgPackages } from './dpkg.js';
import { isNpmDatabase, readNpmPackages, slimNpmManifest } from './npm.js';
import { OS_RELEASE_PATHS, readDistro } from './os-release.js';
import type { InstalledPackage } from './package-url.js';
import { SparseRootfs, type LayerOpener } from './sparse-rootfs.js';
import { spdxDocument, type SpdxSubject } from './spdx.js';

const keep = (path: string): boolean => OS_RELEASE_PATHS.includes(path) || isDpkgDatabase(path) || isApkDatabase(path) || isNpmDatabase(path);

/** Every package the dpkg, apk and npm databases in the image's final filesystem record. */
export async function findPackages(layers: readonly LayerOpener[]): Promise<InstalledPackage[]> {
  const rootfs = await SparseRootfs.read(layers, keep, slimNpmManifest);
  const distro = readDistro(rootfs);
  return [...readDpkgPackages(rootfs, distro), ...readApkPackages(rootfs, distro), ...readNpmPackages(rootfs)];
}

export async function imageSbom(subject: SpdxSubject, layers: readonly LayerOpener[]): Promise<Record<string, unknown>> {
  return spdxDocument(subject, await findPackages(layers));
}
