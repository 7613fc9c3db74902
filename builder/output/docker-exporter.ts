import path from 'node:path';
import { layoutImage } from '../../layers/layout-image.js';
import { checkStdout, refusal, STDOUT_DEST, type Exporter } from './exporter.js';
import { checkFileDest, writeFileDest } from './file-dest.js';
import { normalizedName } from './image-names.js';

/** `type=docker`: a `docker save` archive of one platform's image, for `docker load`. */
export interface DockerOutput {
  readonly type: 'docker';
  /** A file, or `-` for stdout. */
  readonly dest: string;
  /** `name=`: the names to tag the image with, instead of the `-t` names. */
  readonly names?: readonly string[];
}

export const dockerExporter: Exporter<DockerOutput> = {
  type: 'docker',
  usage: 'type=docker,dest=FILE|-[,name=NAME]',
  parse(fields) {
    const dest = fields.required('dest', 'tsbuild loads into no daemon; give dest=FILE and run docker load -i FILE, or dest=- | docker load');
    // buildx's docker exporter writes a tarball unless told tar=false; a docker archive is always one.
    if (fields.boolean('tar') === false) throw fields.bad('type=docker always writes a tar archive; use type=oci,tar=false for a layout directory');
    const names = fields.names('name');
    return { type: 'docker', dest, ...(names ? { names } : {}) };
  },
  check(spec, build) {
    checkStdout(spec.dest, 'type=docker', build);
    checkFileDest(spec.dest, 'type=docker');
    if (build.platforms.length > 1) {
      throw refusal(`type=docker holds one platform only, and ${build.platforms.length} are built; use type=oci for a multi-platform image, or build one --platform`);
    }
    if (build.compression === 'zstd') throw refusal('type=docker cannot hold zstd layers (docker load reads gzip or plain tar); use --compression=gzip or type=oci');
    if (!build.annotations.isEmpty) throw refusal('--annotation cannot apply to type=docker: a docker archive has no place for annotations; use type=oci or type=registry');
    for (const name of spec.names ?? []) normalizedName(name);
  },
  writes(spec) {
    return spec.dest === STDOUT_DEST ? undefined : { path: path.resolve(spec.dest), kind: 'file' };
  },
  async export(artifact, spec, context) {
    // The archive writer loads with the first docker output: other builds never need it.
    const { writeDockerArchive } = await import('../../layers/docker-archive.js');
    const image = layoutImage(context.workspace.layout, artifact.images[0]!.manifest);
    const where = await writeFileDest(spec.dest, context, (file) => writeDockerArchive(image, spec.names ?? artifact.tags, file));
    return `docker ${where}`;
  },
};
