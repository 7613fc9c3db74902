/** Attaches the requested attestations to a build's images, as BuildKit does. */
import { createReadStream } from 'node:fs';
import type { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor } from '../../layers/types.js';
import type { AssembledImage } from '../output/assemble.js';
import type { PlatformPlan } from '../model/plan.js';
import type { AttestOptions } from './attest-options.js';
import { writeAttestationManifest } from './attestation-manifest.js';
import { slsaProvenance, SLSA_PREDICATE_TYPE, type BuildInvocation } from './provenance.js';
import { imageSbom } from './sbom.js';
import { SPDX_PREDICATE_TYPE } from './spdx.js';
import { imageSubjects, statement, type Statement } from './statement.js';

/**
 * Writes one attestation manifest per image into `layout`: provenance and SBOM statements about
 * the image manifest. `plans[i]` is the plan `images[i]` was built from. Returns their index
 * entries, to list after the images in the root index.
 */
export async function attestImages(
  layout: OciLayout,
  images: readonly AssembledImage[],
  plans: readonly PlatformPlan[],
  names: readonly string[],
  invocation: BuildInvocation,
  options: AttestOptions,
): Promise<Descriptor[]> {
  const manifests: Descriptor[] = [];
  for (const [i, image] of images.entries()) {
    const subject = imageSubjects(names, image.manifest.digest, image.platform);
    const statements: Statement[] = [];
    if (options.provenance) statements.push(statement(subject, SLSA_PREDICATE_TYPE, slsaProvenance(invocation, plans[i]!, options.provenance)));
    if (options.sbom) {
      const layers = image.layers.map((layer) => async () => createReadStream(await layer.blobPath()));
      const sbom = await imageSbom({ name: names[0] ?? image.manifest.digest, manifestDigest: image.manifest.digest, created: invocation.time }, layers);
      statements.push(statement(subject, SPDX_PREDICATE_TYPE, sbom));
    }
    if (statements.length === 0) continue;
    manifests.push(await writeAttestationManifest(layout, image.manifest, statements));
  }
  return manifests;
}
