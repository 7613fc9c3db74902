/**
 * SLSA provenance v0.2 (slsa.dev/spec/v0.2/provenance) of one built image, laid out as BuildKit lays
 * out its own (docs/attestations/slsa-definitions.md): `invocation.configSource` names the Dockerfile,
 * `invocation.parameters` holds the frontend and its args under BuildKit's key names, `materials`
 * the base images by purl and digest. `mode=min` leaves out build args, labels, secrets and ssh ids;
 * `mode=max` adds them, the Dockerfile itself and the planned steps.
 *
 * BuildKit's buildType promises an LLB definition, which tsbuild does not have, so the build type is
 * tsbuild's own: its `buildConfig` is `{ dockerfile: { path, data }, steps: [...] }`, one entry per
 * planned step with its stage, platform, command and Dockerfile line. Times come from the build's
 * own clock (SOURCE_DATE_EPOCH or the image's `created`), never from the machine's, so a
 * reproducible build gives the same provenance.
 */
import { createHash } from 'node:crypto';
import { formatPlatform } from '../../layers/platform.js';
import type { Platform } from '../../layers/types.js';
import type { PlatformPlan, StageBase } from '../model/plan.js';
import type { CopySource, ResolvedImage } from '../model/sources.js';
import { imagePurl } from './image-purl.js';

export const SLSA_PREDICATE_TYPE = 'https://slsa.dev/provenance/v0.2';
export const TSBUILD_BUILD_TYPE = 'urn:tsbuild:buildtype:dockerfile:v1';

export type ProvenanceMode = 'min' | 'max';

/** What the build was asked to do, the same for every platform it built. */
export interface BuildInvocation {
  /** The Dockerfile's path as given, relative to the context when inside it. */
  readonly dockerfilePath: string;
  readonly dockerfile: Buffer;
  readonly buildArgs: ReadonlyMap<string, string>;
  readonly labels: ReadonlyMap<string, string>;
  readonly target?: string;
  /** Ids of `--secret` and `--ssh` values: never their content. */
  readonly secretIds: readonly string[];
  readonly sshIds: readonly string[];
  /** The machine that built. */
  readonly builderPlatform: Platform;
  /** RFC 3339: the build's own time, recorded as both start and finish. */
  readonly time: string;
  /** Timestamps are clamped to SOURCE_DATE_EPOCH. */
  readonly fixedTime: boolean;
}

export interface ProvenanceOptions {
  readonly mode: ProvenanceMode;
  readonly builderId: string;
}

export function slsaProvenance(invocation: BuildInvocation, plan: PlatformPlan, options: ProvenanceOptions): Record<string, unknown> {
  const max = options.mode === 'max';
  // Frontend args under BuildKit's key names; build args and labels only in max mode.
  const args: Record<string, string> = {};
  if (max) {
    for (const [name, value] of [...invocation.buildArgs].sort(byKey)) args[`build-arg:${name}`] = value;
    for (const [name, value] of [...invocation.labels].sort(byKey)) args[`label:${name}`] = value;
  }
  if (invocation.target !== undefined) args.target = invocation.target;
  const dropped = !max && invocation.buildArgs.size + invocation.labels.size > 0;
  const time = `${new Date(invocation.time).toISOString().slice(0, 19)}Z`;
  return {
    builder: { id: options.builderId },
    buildType: TSBUILD_BUILD_TYPE,
    invocation: {
      configSource: { entryPoint: invocation.dockerfilePath, digest: { sha256: createHash('sha256').update(invocation.dockerfile).digest('hex') } },
      parameters: {
        frontend: 'dockerfile.v0',
        args,
        locals: [{ name: 'context' }, { name: 'dockerfile' }],
        ...(max ? { secrets: invocation.secretIds.map((id) => ({ id })), ssh: invocation.sshIds.map((id) => ({ id })) } : {}),
      },
      environment: { platform: formatPlatform(invocation.builderPlatform) },
    },
    ...(max ? { buildConfig: buildConfig(invocation, plan) } : {}),
    metadata: {
      buildStartedOn: time,
      buildFinishedOn: time,
      // A local context is not tracked: its files are not among the materials.
      completeness: { parameters: !dropped, environment: true, materials: false },
      reproducible: invocation.fixedTime && isHermetic(plan),
    },
    materials: materials(plan),
  };
}

/** The base images and `COPY --from` images of the plan, each once, by purl and manifest digest. */
function materials(plan: PlatformPlan): Array<{ uri: string; digest: { sha256: string } }> {
  const images = new Map<string, ResolvedImage & { contextName: string }>();
  const note = (source: StageBase | CopySource): void => {
    if (source.kind === 'image') images.set(`${source.contextName}\0${source.image.manifestDigest}`, { ...source.image, contextName: source.contextName });
  };
  for (const stage of plan.stages) {
    note(stage.base);
    for (const step of stage.steps) {
      if (step.kind === 'copy') note(step.from);
      if (step.kind !== 'run') continue;
      for (const mount of step.mounts) {
        if (mount.type === 'bind') note(mount.from);
        if (mount.type === 'cache' && mount.seed) note(mount.seed.from);
      }
    }
  }
  return [...images.values()].map((image) => ({
    // A pulled image by its registry name; one from an OCI layout by its build context name, never the host path.
    uri: image.source ? imagePurl(image.reference, plan.platform) : `oci-layout:${image.contextName}:${image.reference}`,
    digest: { sha256: image.manifestDigest.replace(/^sha256:/, '') },
  }));
}

function buildConfig(invocation: BuildInvocation, plan: PlatformPlan): Record<string, unknown> {
  let n = 0;
  return {
    dockerfile: { path: invocation.dockerfilePath, data: invocation.dockerfile.toString('utf8') },
    steps: plan.stages.flatMap((stage) =>
      stage.steps.map((step) => ({
        id: `step${n++}`,
        stage: stage.name ?? String(stage.index),
        platform: formatPlatform(stage.platform),
        command: step.createdBy,
        location: { file: invocation.dockerfilePath, line: step.location.startLine },
      })),
    ),
  };
}

/**
 * Whether the plan reads nothing but its context and pinned images: no RUN (which may reach the
 * network) and no ADD of a URL or git repository. Only then, with fixed timestamps, does tsbuild
 * claim that the same inputs give the same bytes.
 */
function isHermetic(plan: PlatformPlan): boolean {
  return plan.stages.every((stage) =>
    stage.steps.every((step) => step.kind !== 'run' && !(step.kind === 'copy' && step.sources.some((source) => /^(?:https?|git):\/\/|\.git(?:#|$)|^git@/.test(source)))),
  );
}

function byKey(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
