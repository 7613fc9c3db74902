import path from 'node:path';
import { layoutImage } from '../../layers/layout-image.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { platformMatches } from '../../layers/platform.js';
import { hostPlatform } from '../plan/platform.js';
import { checkStdout, refusal, STDOUT_DEST, type Exporter } from './exporter.js';
import { writeFileDest } from './file-dest.js';
import { normalizedName } from './image-names.js';
import { buildkitNames, copyArtifact, destState, exportToLayoutDir } from './layout-export.js';

/** `type=oci`: an OCI image layout, as a directory or as a tar archive. */
export interface OciOutput {
  readonly type: 'oci';
  /** A directory, a file, or `-` for stdout. */
  readonly dest: string;
  /** A tar archive rather than a directory. */
  readonly tar: boolean;
  /** `name=`: the names to list the image under, instead of the `-t` names. */
  readonly names?: readonly string[];
}

/**
 * The rule for tar or directory: a tar when `tar=true`, when dest ends in `.tar`, or when dest is
 * `-`; a directory otherwise (`tar=false` keeps a `.tar` dest a directory).
 */
function ociWritesTar(dest: string, tar: boolean | undefined): boolean {
  return tar ?? (dest === STDOUT_DEST || dest.endsWith('.tar'));
}

export const ociExporter: Exporter<OciOutput> = {
  type: 'oci',
  usage: 'type=oci,dest=DIR|FILE.tar|-[,tar=true|false][,name=NAME]',
  parse(fields) {
    const dest = fields.required('dest', 'a layout directory, a FILE.tar, or - for stdout');
    const tar = fields.boolean('tar');
    if (tar === false && dest === STDOUT_DEST) throw fields.bad('tar=false writes a directory, which cannot go to stdout (dest=-)');
    const names = fields.names('name');
    return { type: 'oci', dest, tar: ociWritesTar(dest, tar), ...(names ? { names } : {}) };
  },
  check(spec, build) {
    checkStdout(spec.dest, 'type=oci', build);
    for (const name of spec.names ?? []) normalizedName(name);
    if (!spec.tar && spec.dest === STDOUT_DEST) throw refusal('type=oci,dest=- writes a tar: tar=false cannot go to stdout');
    if (spec.dest === STDOUT_DEST) return;
    const dest = path.resolve(spec.dest);
    const found = destState(dest);
    if (spec.tar && found !== 'missing' && found !== 'file') throw refusal(`type=oci: ${dest} is a directory, and this output writes a tar there; give a file name, or tar=false for a layout directory`);
    if (!spec.tar && found === 'file') throw refusal(`type=oci: ${dest} is a file, and this output writes a layout directory there; give a directory, or tar=true`);
    if (!spec.tar && found === 'other directory') throw refusal(`type=oci: ${dest} is a directory that is not an OCI layout (no oci-layout file); give a new or empty directory, or an existing layout`);
  },
  writes(spec) {
    if (spec.dest === STDOUT_DEST) return undefined;
    return { path: path.resolve(spec.dest), kind: spec.tar ? 'file' : 'directory' };
  },
  async export(artifact, spec, context) {
    const names = (spec.names ?? artifact.tags).map(normalizedName);
    const from = context.workspace.layout;
    if (!spec.tar) {
      const dest = path.resolve(spec.dest);
      await exportToLayoutDir(artifact, dest, from, buildkitNames(names, 'latest'));
      return `oci ${dest}`;
    }
    // The tar writer loads with the first archive output: a layout directory never needs it.
    const { writeOciArchive } = await import('./oci-archive.js');
    const staging = await OciLayout.open(await context.workspace.newDir('oci-archive'), { create: true });
    await copyArtifact(artifact, from, staging, buildkitNames(names, 'unnamed'));
    // The image a loader that takes one picks: this machine's platform when built, else the first.
    const host = hostPlatform();
    const loaded = artifact.images.find((i) => platformMatches(i.platform, host)) ?? artifact.images[0]!;
    const where = await writeFileDest(spec.dest, context, (file) => writeOciArchive(staging, layoutImage(staging, loaded.manifest), names, file));
    return `oci ${where}`;
  },
};
