import type { SparseRootfs } from './sparse-rootfs.js';

/** The files os-release(5) names, in the order they are read. */
export const OS_RELEASE_PATHS = ['etc/os-release', 'usr/lib/os-release'];

/** `ID` and `VERSION_ID` of the image's distribution, when it says. */
export interface Distro {
  readonly id: string;
  readonly versionId?: string;
}

export function readDistro(rootfs: SparseRootfs): Distro | undefined {
  for (const path of OS_RELEASE_PATHS) {
    const content = rootfs.readFile(path);
    if (content === undefined) continue;
    const fields = parseOsRelease(content.toString('utf8'));
    const id = fields.get('ID');
    if (id) return { id, ...(fields.get('VERSION_ID') ? { versionId: fields.get('VERSION_ID')! } : {}) };
  }
  return undefined;
}

/** `KEY=value` lines, values optionally quoted with shell quoting (the subset os-release allows). */
export function parseOsRelease(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\(["\\$`])/g, '$1');
    }
    fields.set(match[1]!, value);
  }
  return fields;
}

/** The purl `distro` qualifier, `ID-VERSION_ID` (`debian-12`, `alpine-3.19.1`). */
export function distroQualifier(distro: Distro | undefined): string | undefined {
  if (!distro) return undefined;
  return distro.versionId ? `${distro.id}-${distro.versionId}` : distro.id;
}
