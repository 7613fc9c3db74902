import path from 'node:path';
import type { Exporter } from './exporter.js';
import { exportToLayoutDir } from './layout-export.js';

/** The local image store, where an image goes when no `--output` is given: an OCI layout listed by `tsbuild images`. */
export interface StoreOutput {
  readonly type: 'store';
  readonly dest: string;
}

/** Lists the image under each `-t` name as given, which `tsbuild images` and `inspect` show and find. */
export const storeExporter: Exporter<StoreOutput> = {
  type: 'store',
  usage: 'the local image store (no --output)',
  parse(fields) {
    throw fields.bad('the local store is where images go without --output; it is not an --output type');
  },
  check() {},
  writes(spec) {
    return { path: path.resolve(spec.dest), kind: 'directory' };
  },
  async export(artifact, spec, context) {
    const dest = path.resolve(spec.dest);
    await exportToLayoutDir(artifact, dest, context.workspace.layout, (layout, root) => layout.addImage(root, [...artifact.tags]).then(() => undefined));
    return `store ${dest}`;
  },
};
