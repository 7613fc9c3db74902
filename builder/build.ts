import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildRequest, BuildSource, PlanRequest } from './build-request.js';
import { SourceError } from '../layers/errors.js';
import { readLayoutImage } from '../layers/layout-image.js';
import { OciLayout } from '../layers/oci-layout.js';
import type { Descriptor, Digest, Platform } from '../layers/types.js';
import { isErrnoCode } from '../layers/fs-util.js';
import { loadIgnorePatterns, PatternMatcher } from './context/ignore.js';
import { executePlan } from './exec/execute.js';
import { prepareRootfs } from './rootfs/prepare.js';
import { checkEmulation } from './isolation/emulation-check.js';
import { defaultBuildCacheDir, LocalCacheStore } from './cache/local-store.js';
import { ContentDigests } from './context/content-digests.js';
import type { RegistryCache } from './cache/registry-cache.js';
import { StepCache } from './cache/step-cache.js';
import { resolveBaseImage, type RegistrySettings } from './registry/registry-access.js';
import { defaultCacheDir, defaultStoreDir } from './locations.js';
import { RootfsCache } from './rootfs/rootfs-cache.js';
import type { ImageLayer } from './model/image-layer.js';
import { Workspace } from './workspace/workspace.js';
import type { ParsedDockerfile } from './frontend/instructions.js';
import { parseDockerfile } from './frontend/parse.js';
import { dockerfileReadError } from './frontend/dockerfile-read-error.js';
import { assembleImage, assembleIndex, type AssembledImage } from './output/assemble.js';
import { gatherBlobs } from './output/copy-blobs.js';
import type { BuildArtifact } from './output/exporter.js';
import { exportArtifact, writtenPath, type ExportTarget } from './output/exporters.js';
import { prepareOutputs } from './output/prepare-outputs.js';
import type { BuildInvocation } from './attest/provenance.js';
import { layoutSelector, parseBuildContexts, type NamedContext } from './plan/build-contexts.js';
import type { BuildPlan, PlannedStage } from './model/plan.js';
import type { ResolvedImage } from './model/sources.js';
import { createPlan } from './plan/plan.js';
import { hostPlatform } from './plan/platform.js';
import { applyRunDefaults } from './plan/run-defaults.js';
import { silentProgress, type ProgressListener } from './progress.js';
import { loadSecrets, parseSecretSpec } from './run/secrets.js';
import { loadSshAgents } from './run/ssh-agents.js';
import { defaultRunCacheDir } from './run/cache-mounts.js';

// Loaded by the builds that use them: planning never picks an isolation (runc, the launcher's
// seccomp tables) nor contacts a cache repository (the registry client).
const isolationSelection = () => import('./isolation/select.js');
const registryCacheModule = () => import('./cache/registry-cache.js');
// Building in place (--isolation=none) brings its own sandbox, loaded only for such a build.
const inPlaceSandboxModule = () => import('./isolation/in-place-sandbox.js');
// The attestation modules load only for a build that asks for attestations.
const attestOutputs = () => import('./attest/attest-outputs.js');
const attestAttach = () => import('./attest/attach.js');

export type { BuildRequest, PlanRequest };

export interface BuildResult {
  /** The manifest (one platform) or index (several) that was exported. */
  readonly descriptor: Descriptor;
  /** Docker's image ID: the config digest, or the index digest for a multi-platform build. */
  readonly imageId: Digest;
  readonly plan: BuildPlan;
}

/** Reads and parses the Dockerfile, then plans the build without running anything. */
export async function planBuild(request: PlanRequest): Promise<BuildPlan> {
  const { parsed, dockerfile } = await readDockerfile(request.source);
  return planParsed(parsed, dockerfile, request);
}

/**
 * The build cache, which warns and stops being written when its file system fills up. One that
 * cannot even be set up for lack of space is replaced by a throwaway store in the workspace: the
 * build goes on, and nothing of it is cached.
 */
async function openCacheStore(dir: string, workspace: Workspace, progress: ProgressListener): Promise<LocalCacheStore> {
  const onFull = (message: string): void => progress({ kind: 'note', message });
  try {
    return await LocalCacheStore.open(dir, { onFull });
  } catch (err) {
    if (!isErrnoCode(err, 'ENOSPC') && !isErrnoCode(err, 'EDQUOT')) throw err;
    onFull(`build cache ${dir} is full (no space left on device): this build goes on without it`);
    return LocalCacheStore.open(path.join(workspace.dir, 'build-cache'), { onFull });
  }
}

/** Builds an image from a Dockerfile and exports it to every requested output. */
export async function build(request: BuildRequest): Promise<BuildResult> {
  const progress = request.progress ?? silentProgress;
  const env = request.env ?? {};
  const { cache: cacheSettings = {}, image = {}, outputs = {}, run = {} } = request;
  const exports = prepareOutputs({ ...outputs, platforms: request.source.platforms, compression: image.compression, storeDir: outputs.storeDir ?? defaultStoreDir(env) });
  const attest = image.attest && (image.attest.provenance || image.attest.sbom) && (await attestOutputs()).checkAttestationTargets(exports.targets, (message) => progress({ kind: 'note', message })) ? image.attest : undefined;
  const { parsed, dockerfile, bytes: dockerfileBytes } = await readDockerfile(request.source);
  const contextDir = path.resolve(request.source.context);
  const ignore = new PatternMatcher(await loadIgnorePatterns(contextDir, dockerfile));
  const plan = await planParsed(parsed, dockerfile, request);
  for (const message of plan.notes) progress({ kind: 'note', message });
  const hasRun = plan.platforms.some((p) => p.stages.some((s) => s.steps.some((step) => step.kind === 'run')));
  if (hasRun) checkEmulation(plan, hostPlatform());
  // Chosen before any work, so a RUN step this container cannot run fails the build at once.
  const isolation = hasRun ? await (await isolationSelection()).selectIsolation(run.isolation ?? 'auto', { forceInPlace: run.forceInPlace ?? false, probeCacheDir: defaultCacheDir(env) }) : undefined;
  const inPlace = isolation?.kind === 'in-place';
  if (inPlace) refuseMountsInPlace(plan);
  const secrets = await loadSecrets((run.secrets ?? []).map(parseSecretSpec), env);
  const sshAgents = await loadSshAgents(run.ssh ?? [], env);
  const inPlaceWorkRoot = inPlace ? (await inPlaceSandboxModule()).inPlaceWorkRoot : undefined;
  if (inPlaceWorkRoot !== undefined && request.tmpDir === undefined) await mkdir(inPlaceWorkRoot, { recursive: true, mode: 0o700 });
  const workspace = await Workspace.create(request.tmpDir ?? inPlaceWorkRoot);
  for (const message of workspace.sweepFailures) progress({ kind: 'note', message });
  const cacheStore = await openCacheStore(cacheSettings.dir ?? defaultBuildCacheDir(env), workspace, progress).catch(async (err: unknown) => {
    await workspace.remove();
    throw err;
  });
  let registryCache: RegistryCache | undefined;
  try {
    registryCache =
      cacheSettings.repository === undefined
        ? undefined
        : new (await registryCacheModule()).RegistryCache(cacheSettings.repository, {
            registry: registryOf(request),
            ...(cacheSettings.ttlSeconds !== undefined ? { ttlSeconds: cacheSettings.ttlSeconds } : {}),
            tmpDir: workspace.dir,
          });
    const cache = new StepCache({
      store: cacheStore,
      disabled: cacheSettings.disabled ?? false,
      disabledStages: new Set((cacheSettings.disabledStages ?? []).map((s) => s.toLowerCase())),
      buildIdentity: dockerfile,
      ...(registryCache ? { registry: registryCache, onWarning: (message: string) => progress({ kind: 'note', message }) } : {}),
      ...(cacheSettings.repositoryUse ? { registryUse: cacheSettings.repositoryUse } : {}),
      ...(cacheSettings.repositoryUse?.mode === 'min' ? { publishedStage: imageStages(plan) } : {}),
    });
    const rootfsCache = new RootfsCache(path.join(defaultCacheDir(env), 'rootfs'));
    const standardPrepare = (layers: readonly ImageLayer[]) => prepareRootfs(layers, workspace, { cache: rootfsCache, onNote: (message) => progress({ kind: 'note', message }) });
    const sandbox = !isolation
      ? undefined
      : isolation.kind === 'in-place'
        ? await (await inPlaceSandboxModule()).inPlaceSandbox({ protectedPaths: buildOwnPaths(request, contextDir, dockerfile, workspace), reason: isolation.reason, workspace, runtimeDir: await workspace.newDir('node-runtime') })
        : { ...isolation, prepare: standardPrepare };
    if (sandbox) progress({ kind: 'note', message: `isolation: ${sandbox.backend.name} (${sandbox.reason})` });
    const digests = await ContentDigests.load(cacheStore.dir, contextDir);
    const contextTree = { root: contextDir, scope: 'context' as const, label: 'build context', isIgnored: (p: string) => ignore.matches(p), canSkipDir: (p: string) => ignore.canSkipDir(p), digests };
    const images: AssembledImage[] = [];
    const createdTimes: string[] = [];
    const counter = { next: 0 };
    for (const platformPlan of plan.platforms) {
      const built = await executePlan(
        platformPlan,
        {
          workspace,
          prepareRootfs: sandbox?.prepare ?? standardPrepare,
          ...(sandbox ? { isolation: sandbox.backend } : {}),
          cache,
          contextTree,
          compression: image.compression ?? 'gzip',
          ...(image.compressionLevel !== undefined ? { compressionLevel: image.compressionLevel } : {}),
          ...(image.sourceDateEpoch !== undefined ? { sourceDateEpoch: image.sourceDateEpoch } : {}),
          progress,
          ...(request.signal ? { signal: request.signal } : {}),
          ...(run.timeoutSeconds !== undefined ? { runTimeoutSeconds: run.timeoutSeconds } : {}),
          runCacheDir: defaultRunCacheDir(env),
          secrets,
          sshAgents,
          env,
        },
        counter,
      );
      images.push(await assembleImage(built, { ...(built.created !== undefined ? { created: built.created } : {}), labels: image.labels ?? new Map(), annotations: exports.annotations }, workspace.layout));
      if (built.created !== undefined) createdTimes.push(built.created);
    }
    await cache.settle();
    await digests.save();
    // The provenance is dated like the images, so a fully cached rebuild reproduces it too.
    const created = createdTimes.sort().at(-1) ?? new Date((image.sourceDateEpoch ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
    const invocation = attest && buildInvocation(request, contextDir, dockerfile, dockerfileBytes, created);
    const attestations = attest && invocation ? await (await attestAttach()).attestImages(workspace.layout, images, plan.platforms, outputs.tags ?? [], invocation, attest) : undefined;
    const root = images.length === 1 && !attestations ? images[0]!.manifest : await assembleIndex(images, workspace.layout, exports.annotations, attestations);
    const artifact: BuildArtifact = { root, images, tags: outputs.tags ?? [], layerOrigins: layerOrigins(plan) };
    // A push reads each layer where it is, so a base layer the registry has is never downloaded.
    if (exports.targets.some((target) => target.type !== 'registry')) await gatherBlobs(artifact, workspace);
    const exportContext = { workspace, registry: registryOf(request), rootfsCache, ...(outputs.stream ? { stdout: outputs.stream } : {}) };
    for (const target of exports.targets) {
      const where = await exportArtifact(artifact, target, exportContext);
      progress({ kind: 'exported', what: where, digest: root.digest });
    }
    const imageId = images.length === 1 ? images[0]!.config.digest : root.digest;
    if (outputs.iidfile) await writeFile(outputs.iidfile, imageId);
    if (outputs.digestFile) await writeFile(outputs.digestFile, root.digest);
    if (outputs.metadataFile) await writeFile(outputs.metadataFile, `${JSON.stringify(buildMetadata(artifact, imageId), null, 2)}\n`);
    if (cacheSettings.maxBytes !== undefined) await cacheStore.enforceLimit(cacheSettings.maxBytes);
    return { descriptor: root, imageId, plan };
  } finally {
    await registryCache?.release();
    await cacheStore.release();
    await workspace.remove();
  }
}

/** The stages the built images are made of: each target stage and the stages it is based on (`--cache-to mode=min`). */
function imageStages(plan: BuildPlan): (stage: PlannedStage) => boolean {
  const indexes = new Set<number>();
  for (const platform of plan.platforms) {
    for (let stage = platform.stages.find((s) => s.index === platform.targetIndex); stage; ) {
      indexes.add(stage.index);
      const base = stage.base;
      stage = base.kind === 'stage' ? platform.stages.find((s) => s.index === base.index) : undefined;
    }
  }
  return (stage) => indexes.has(stage.index);
}

/** The registry settings, reading the request's environment unless they name their own. */
function registryOf(request: PlanRequest): RegistrySettings {
  return { env: request.env ?? {}, ...request.registry };
}

/** `--isolation=none` runs processes without mounts: a RUN --mount fails at its line before any work. */
function refuseMountsInPlace(plan: BuildPlan): void {
  for (const step of plan.platforms.flatMap((p) => p.stages.flatMap((s) => s.steps))) {
    if (step.kind === 'run' && step.mounts.length > 0) {
      throw new SourceError(step.location.file, step.location.startLine, 'RUN --mount is not supported with --isolation=none, which cannot mount anything');
    }
  }
}

async function readDockerfile(source: BuildSource): Promise<{ parsed: ParsedDockerfile; dockerfile: string; bytes: Buffer }> {
  const dockerfile = path.resolve(source.dockerfile ?? path.join(source.context, 'Dockerfile'));
  let bytes: Buffer;
  try {
    bytes = await readFile(dockerfile);
  } catch (err) {
    throw dockerfileReadError(dockerfile, source.context, source.dockerfile !== undefined, err);
  }
  return { parsed: parseDockerfile(bytes.toString('utf8'), displayPath(dockerfile)), dockerfile, bytes };
}

/** What the provenance records of the request: the ids of secrets and ssh agents, never their content. */
function buildInvocation(request: BuildRequest, contextDir: string, dockerfile: string, bytes: Buffer, time: string): BuildInvocation {
  const relative = path.relative(contextDir, dockerfile);
  return {
    dockerfilePath: relative.startsWith('..') || path.isAbsolute(relative) ? path.basename(dockerfile) : relative,
    dockerfile: bytes,
    buildArgs: request.source.buildArgs ?? new Map(),
    labels: request.image?.labels ?? new Map(),
    ...(request.source.target !== undefined ? { target: request.source.target } : {}),
    secretIds: (request.run?.secrets ?? []).map((value) => parseSecretSpec(value).id),
    sshIds: (request.run?.ssh ?? []).map((value) => value.split('=')[0]!),
    builderPlatform: hostPlatform(),
    time,
    fixedTime: request.image?.sourceDateEpoch !== undefined,
  };
}

/** Where each layer of a pulled base image came from, for cross-repository mounts on push. */
function layerOrigins(plan: BuildPlan): Map<Digest, { registry: string; repository: string }> {
  const origins = new Map<Digest, { registry: string; repository: string }>();
  for (const stage of plan.platforms.flatMap((p) => p.stages)) {
    if (stage.base.kind !== 'image' || !stage.base.image.source) continue;
    for (const layer of stage.base.image.layers) origins.set(layer.digest, stage.base.image.source);
  }
  return origins;
}

/** What `--metadata-file` records, under the keys BuildKit's exporters use. */
function buildMetadata(artifact: BuildArtifact, imageId: Digest): Record<string, unknown> {
  return {
    'containerimage.digest': artifact.root.digest,
    'containerimage.descriptor': artifact.root,
    ...(artifact.images.length === 1 ? { 'containerimage.config.digest': imageId } : {}),
    ...(artifact.tags.length > 0 ? { 'image.name': artifact.tags.join(',') } : {}),
  };
}

/** Everything of the user's and the build's own that an in-place build must never remove. */
function buildOwnPaths(request: BuildRequest, contextDir: string, dockerfile: string, workspace: Workspace): string[] {
  const { outputs = {}, env = {} } = request;
  const targets: readonly ExportTarget[] = outputs.targets?.length ? outputs.targets : [{ type: 'store', dest: outputs.storeDir ?? defaultStoreDir(env) }];
  const written = targets.flatMap((t) => writtenPath(t)?.path ?? []);
  const contexts = [...parseBuildContexts(request.source.buildContexts ?? [], process.cwd()).values()].map((c) => (c.kind === 'local' ? c.dir : c.layoutDir));
  const cacheDir = request.cache?.dir;
  return [workspace.dir, contextDir, dockerfile, defaultCacheDir(env), ...(cacheDir ? [path.resolve(cacheDir)] : []), ...written, ...contexts, ...[outputs.iidfile, outputs.digestFile, outputs.metadataFile].flatMap((f) => (f ? [path.resolve(f)] : []))];
}

/** A path as errors show it: relative to the working directory when inside it. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative !== '' && !relative.startsWith('..') ? relative : file;
}

async function planParsed(parsed: ParsedDockerfile, dockerfile: string, request: PlanRequest): Promise<BuildPlan> {
  const host = hostPlatform();
  const { source } = request;
  const plan = await createPlan(parsed, dockerfile, {
    buildArgs: source.buildArgs ?? new Map(),
    ...(source.target !== undefined ? { target: source.target } : {}),
    buildPlatform: host,
    platforms: source.platforms?.length ? source.platforms : [host],
    buildContexts: parseBuildContexts(source.buildContexts ?? [], process.cwd()),
    resolveImage,
    resolveRegistryImage: (reference, platform) => resolveBaseImage(reference, platform, registryOf(request)),
  });
  return applyRunDefaults(plan, source);
}

async function resolveImage(context: Extract<NamedContext, { kind: 'oci-layout' }>, platform: Platform): Promise<ResolvedImage> {
  const layout = await OciLayout.open(context.layoutDir, { create: false });
  const selector = layoutSelector((await layout.readIndex()).manifests, context.reference);
  const image = await readLayoutImage(layout, selector, platform);
  return {
    image,
    reference: context.reference,
    manifestDigest: await image.digest(),
    config: await image.config(),
    layers: (await image.manifest()).layers,
  };
}
