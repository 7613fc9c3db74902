import { pushToRegistry } from '../registry/registry-access.js';
import { artifactItem, builtLayers } from './artifact-image.js';
import { refusal, type Exporter } from './exporter.js';
import { normalizedName } from './image-names.js';

/** `type=registry`: pushes the image (or index) to a registry under each name. */
export interface RegistryOutput {
  readonly type: 'registry';
  /** `name=`: where to push; every `-t` name when absent. */
  readonly names?: readonly string[];
}

export const registryExporter: Exporter<RegistryOutput> = {
  type: 'registry',
  usage: 'type=registry[,name=REGISTRY/REPO:TAG]',
  parse(fields) {
    const names = fields.names('name');
    return names ? { type: 'registry', names } : { type: 'registry' };
  },
  check(spec, build) {
    const names = spec.names ?? build.tags;
    if (names.length === 0) throw refusal('pushing needs a name: give -t NAME:TAG or --output type=registry,name=NAME:TAG');
    for (const name of names) normalizedName(name);
    // A registry stores manifests and indexes, not the descriptor that points at the top one.
    if (build.annotations.has('index-descriptor')) {
      throw refusal('--annotation index-descriptor: cannot apply to type=registry, which stores no descriptor of the index; use index: instead');
    }
    if (build.platforms.length === 1 && build.annotations.has('manifest-descriptor')) {
      throw refusal('--annotation manifest-descriptor: cannot apply to a single-platform push, which has no index to hold it; use manifest: instead');
    }
  },
  writes() {
    return undefined;
  },
  async export(artifact, spec, context) {
    const names = spec.names ?? artifact.tags;
    // Layers are read where the build left them: a base layer the registry has is never downloaded.
    const pushed = await pushToRegistry(names, artifactItem(artifact, context.workspace.layout, builtLayers(artifact)), context.registry);
    return `registry ${pushed.references.join(', ')}`;
  },
};
