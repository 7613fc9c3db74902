/** Attaches the requested attestations to a build's images, in the image index BuildKit would write. */
import type { OciLayout } from '../../layers/oci-layout.js';
import type { Descriptor } from '../../layers/types.js';
import type { PlatformPlan } from '../plan/plan-types.js';
import type { AttestOptions } from './attest-options.js';
import { writeAttestationManifest, writeAttestedIndex } from './attestation-manifest.js';
import { slsaProvenance, SLSA_PREDICATE_TYPE, type BuildInvocation } from './provenance.js';
import { imageSbom } from './sbom.js';
import type { LayerOpener } from './sparse-rootfs.js';
import { SPDX_PREDICATE_TYPE } from './spdx.js';
import { imageSubjects, statement, type Statement } from './statement.js';

/** One platform's built image: its manifest (with platform), its layers, and the plan it came from. */
export interface AttestedImage {
  readonly manifest: Descriptor & { readonly platform: NonNullable<Descriptor['platform']> };
  readonly layers: readonly LayerOpener[];
  readonly plan: PlatformPlan;
}

/** Writes each image's attestation manifest and the index over everything into `layout`; returns the index. */
export async function attachAttestations(
  layout: OciLayout,
  images: readonly AttestedImage[],
  names: readonly string[],
  invocation: BuildInvocation,
  options: AttestOptions,
): Promise<Descriptor> {
  const attestations: Descriptor[] = [];
  for (const image of images) {
    const subject = imageSubjects(names, image.manifest.digest, image.manifest.platform);
    const statements: Statement[] = [];
    if (options.provenance) statements.push(statement(subject, SLSA_PREDICATE_TYPE, slsaProvenance(invocation, image.plan, options.provenance)));
    if (options.sbom) {
      const sbom = await imageSbom({ name: names[0] ?? image.manifest.digest, manifestDigest: image.manifest.digest, created: invocation.time }, image.layers);
      statements.push(statement(subject, SPDX_PREDICATE_TYPE, sbom));
    }
    attestations.push(await writeAttestationManifest(layout, image.manifest, statements));
  }
  return writeAttestedIndex(
    layout,
    images.map((image) => image.manifest),
    attestations,
  );
}
