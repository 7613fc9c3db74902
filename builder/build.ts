import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Compression } from '../layers/compression.js';
import { SourceError, TsbuildError } from '../layers/errors.js';
import { readLayoutImage } from '../layers/image-reader.js';
import { OciLayout } from '../layers/oci-layout.js';
import type { Descriptor, Digest, Platform } from '../layers/types.js';
import { isErrnoCode } from '../layers/fs-util.js';
import { loadIgnorePatterns, PatternMatcher } from './context/ignore.js';
import { executePlan } from './exec/execute.js';
import { prepareRootfs } from './rootfs/prepare.js';
import type { IsolationMode } from './isolation/backend.js';
import { defaultBuildCacheDir, LocalCacheStore } from './cache/local-store.js';
import type { RegistryCache } from './cache/registry-cache.js';
import { StepCache } from './cache/step-cache.js';
import { pullBaseImage, type RegistrySettings } from './registry/registry-access.js';
import { inPlaceSandbox, inPlaceWorkRoot } from './isolation/in-place-sandbox.js';
import { defaultCacheDir } from './rootfs/rootfs-cache.js';
import type { ImageLayer } from './exec/image-layer.js';
import { Workspace } from './exec/workspace.js';
import type { ParsedDockerfile } from './frontend/instructions.js';
import { parseDockerfile } from './frontend/parse.js';
import { assembleImage, assembleIndex, type AssembledImage } from './output/assemble.js';
import { exportArtifact, gatherBlobs, type BuildArtifact, type ExportTarget } from './output/export.js';
import type { OutputSpec } from './output/output-spec.js';
import { parseBuildContexts, type NamedContext } from './plan/build-contexts.js';
import type { BuildPlan, ResolvedImage } from './plan/plan-types.js';
import { createPlan } from './plan/plan.js';
import { hostPlatform } from './plan/platform.js';
import { silentProgress, type ProgressListener } from './progress.js';
import { loadSecrets, parseSecretSpec } from './run/secrets.js';
import { loadSshAgents } from './run/ssh-agents.js';
import { defaultRunCacheDir } from './run/cache-mounts.js';
import { defaultStoreDir } from './store-location.js';

// Loaded by the builds that use them: planning never picks an isolation (runc, the launcher's
// seccomp tables) nor contacts a cache repository (the registry client).
const isolationSelection = () => import('./isolation/select.js');
const registryCacheModule = () => import('./cache/registry-cache.js');

export interface PlanRequest {
  /** The build context directory. */
  readonly context: string;
  /** The Dockerfile; `CONTEXT/Dockerfile` when absent. */
  readonly dockerfile?: string;
  readonly buildArgs?: ReadonlyMap<string, string>;
  readonly target?: string;
  /** Target platforms; the host's when empty. */
  readonly platforms?: readonly Platform[];
  /** `--build-context` values, `NAME=VALUE`. */
  readonly buildContexts?: readonly string[];
  /** How images that are neither stages nor build contexts are pulled. */
  readonly registry?: RegistrySettings;
}

export interface BuildRequest extends PlanRequest {
  readonly tags?: readonly string[];
  /** Where the image goes; the default local store when empty. */
  readonly outputs?: readonly OutputSpec[];
  readonly labels?: ReadonlyMap<string, string>;
  readonly compression?: Compression;
  readonly compressionLevel?: number;
  readonly sourceDateEpoch?: number;
  /** Writes the image ID (config digest, or index digest for several platforms) here. */
  readonly iidfile?: string;
  /** Writes the digest of the manifest (or index) that was exported or pushed here. */
  readonly digestFile?: string;
  /** Writes the digest, names and descriptor as JSON here, with BuildKit's key names. */
  readonly metadataFile?: string;
  /** Where the build's scratch space (rootfs mounts, temp blobs) goes; the system temp dir when absent. */
  readonly tmpDir?: string;
  /** The local store used when no output is given; `defaultStoreDir()` when absent. */
  readonly storeDir?: string;
  /** How RUN steps are isolated; `auto` when absent. */
  readonly isolation?: IsolationMode;
  /** The build cache directory; `<cache dir>/build-cache` when absent. */
  readonly cacheDir?: string;
  /** Runs every step instead of reusing cached results (results are still stored). */
  readonly noCache?: boolean;
  /** Stages (by name or index) whose steps always run. */
  readonly noCacheFilter?: readonly string[];
  /** `--cache-repo`: a registry repository (`REGISTRY/REPO`) that shares the build cache between machines. */
  readonly cacheRepo?: string;
  /** Entries of the cache repository older than this many seconds are ignored. */
  readonly cacheTtlSeconds?: number;
  /** Evicts least recently used cache entries after the build until the cache is at most this many bytes. */
  readonly cacheMaxBytes?: number;
  /** Kills a RUN step that takes longer than this many seconds, failing the build. */
  readonly runTimeoutSeconds?: number;
  /** `--secret` values (`id=ID,src=PATH` or `id=ID,env=VAR`): what `RUN --mount=type=secret` can mount. */
  readonly secrets?: readonly string[];
  /** `--ssh` values (`ID` for `$SSH_AUTH_SOCK`, or `ID=SOCKET`): the agents `RUN --mount=type=ssh` can reach. */
  readonly ssh?: readonly string[];
  /** Lets `isolation: 'none'` replace the root filesystem outside a detected container. */
  readonly forceInPlace?: boolean;
  readonly progress?: ProgressListener;
  readonly signal?: AbortSignal;
}

export interface BuildResult {
  /** The manifest (one platform) or index (several) that was exported. */
  readonly descriptor: Descriptor;
  /** Docker's image ID: the config digest, or the index digest for a multi-platform build. */
  readonly imageId: Digest;
  readonly plan: BuildPlan;
}

/** Reads and parses the Dockerfile, then plans the build without running anything. */
export async function planBuild(request: PlanRequest): Promise<BuildPlan> {
  const { parsed, dockerfile } = await readDockerfile(request);
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
  const { parsed, dockerfile } = await readDockerfile(request);
  const contextDir = path.resolve(request.context);
  const ignore = new PatternMatcher(await loadIgnorePatterns(contextDir, dockerfile));
  const plan = await planParsed(parsed, dockerfile, request);
  for (const message of plan.notes) progress({ kind: 'note', message });
  const hasRun = plan.platforms.some((p) => p.stages.some((s) => s.steps.some((step) => step.kind === 'run')));
  // Chosen before any work, so a RUN step this container cannot run fails the build at once.
  const isolation = hasRun ? await (await isolationSelection()).selectIsolation(request.isolation ?? 'auto', { forceInPlace: request.forceInPlace ?? false }) : undefined;
  const inPlace = isolation?.kind === 'in-place';
  if (inPlace) refuseMountsInPlace(plan);
  const secrets = await loadSecrets((request.secrets ?? []).map(parseSecretSpec));
  const sshAgents = await loadSshAgents(request.ssh ?? []);
  if (inPlace && request.tmpDir === undefined) await mkdir(inPlaceWorkRoot, { recursive: true, mode: 0o700 });
  const workspace = await Workspace.create(request.tmpDir ?? (inPlace ? inPlaceWorkRoot : undefined));
  for (const message of workspace.sweepFailures) progress({ kind: 'note', message });
  const cacheStore = await openCacheStore(request.cacheDir ?? defaultBuildCacheDir(), workspace, progress).catch(async (err: unknown) => {
    await workspace.remove();
    throw err;
  });
  let registryCache: RegistryCache | undefined;
  try {
    registryCache =
      request.cacheRepo === undefined
        ? undefined
        : new (await registryCacheModule()).RegistryCache(request.cacheRepo, {
            registry: request.registry ?? {},
            ...(request.cacheTtlSeconds !== undefined ? { ttlSeconds: request.cacheTtlSeconds } : {}),
            tmpDir: workspace.dir,
          });
    const cache = new StepCache({
      store: cacheStore,
      disabled: request.noCache ?? false,
      disabledStages: new Set((request.noCacheFilter ?? []).map((s) => s.toLowerCase())),
      buildIdentity: dockerfile,
      ...(registryCache ? { registry: registryCache, onWarning: (message: string) => progress({ kind: 'note', message }) } : {}),
    });
    const standardPrepare = (layers: readonly ImageLayer[]) => prepareRootfs(layers, workspace, { onNote: (message) => progress({ kind: 'note', message }) });
    const sandbox = !isolation
      ? undefined
      : isolation.kind === 'in-place'
        ? await inPlaceSandbox({ protectedPaths: buildOwnPaths(request, contextDir, dockerfile, workspace), reason: isolation.reason, workspace, runtimeDir: await workspace.newDir('node-runtime') })
        : { ...isolation, prepare: standardPrepare };
    if (sandbox) progress({ kind: 'note', message: `isolation: ${sandbox.backend.name} (${sandbox.reason})` });
    const contextTree = { root: contextDir, scope: 'context' as const, label: 'build context', isIgnored: (p: string) => ignore.matches(p), canSkipDir: (p: string) => ignore.canSkipDir(p) };
    const images: AssembledImage[] = [];
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
          compression: request.compression ?? 'gzip',
          ...(request.compressionLevel !== undefined ? { compressionLevel: request.compressionLevel } : {}),
          ...(request.sourceDateEpoch !== undefined ? { sourceDateEpoch: request.sourceDateEpoch } : {}),
          progress,
          ...(request.signal ? { signal: request.signal } : {}),
          ...(request.runTimeoutSeconds !== undefined ? { runTimeoutSeconds: request.runTimeoutSeconds } : {}),
          runCacheDir: defaultRunCacheDir(),
          secrets,
          sshAgents,
        },
        counter,
      );
      images.push(await assembleImage(built, { ...(built.created !== undefined ? { created: built.created } : {}), labels: request.labels ?? new Map() }, workspace.layout));
    }
    const root = images.length === 1 ? images[0]!.manifest : await assembleIndex(images, workspace.layout);
    const artifact: BuildArtifact = { root, images, tags: request.tags ?? [], layerOrigins: layerOrigins(plan) };
    await gatherBlobs(artifact, workspace);
    const targets: ExportTarget[] = request.outputs?.length ? [...request.outputs] : [{ type: 'store', dest: request.storeDir ?? defaultStoreDir() }];
    for (const target of targets) {
      const where = await exportArtifact(artifact, target, workspace, request.registry ?? {});
      progress({ kind: 'exported', what: where, digest: root.digest });
    }
    const imageId = images.length === 1 ? images[0]!.config.digest : root.digest;
    if (request.iidfile) await writeFile(request.iidfile, imageId);
    if (request.digestFile) await writeFile(request.digestFile, root.digest);
    if (request.metadataFile) await writeFile(request.metadataFile, `${JSON.stringify(buildMetadata(artifact, imageId), null, 2)}\n`);
    if (request.cacheMaxBytes !== undefined) await cacheStore.enforceLimit(request.cacheMaxBytes);
    return { descriptor: root, imageId, plan };
  } finally {
    await registryCache?.close();
    await cacheStore.release();
    await workspace.remove();
  }
}

/** `--isolation=none` runs processes without mounts: a RUN --mount fails at its line before any work. */
function refuseMountsInPlace(plan: BuildPlan): void {
  for (const step of plan.platforms.flatMap((p) => p.stages.flatMap((s) => s.steps))) {
    if (step.kind === 'run' && step.mounts.length > 0) {
      throw new SourceError(step.location.file, step.location.startLine, 'RUN --mount is not supported with --isolation=none, which cannot mount anything');
    }
  }
}

async function readDockerfile(request: PlanRequest): Promise<{ parsed: ParsedDockerfile; dockerfile: string }> {
  const dockerfile = path.resolve(request.dockerfile ?? path.join(request.context, 'Dockerfile'));
  let text: string;
  try {
    text = await readFile(dockerfile, 'utf8');
  } catch (err) {
    throw new TsbuildError('NO_DOCKERFILE', `cannot read Dockerfile ${dockerfile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { parsed: parseDockerfile(text, displayPath(dockerfile)), dockerfile };
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
  const files = request.outputs?.flatMap((o) => (o.type === 'registry' ? [] : [path.resolve(o.dest)])) ?? [];
  const outputs = request.outputs?.length ? files : [request.storeDir ?? defaultStoreDir()];
  const contexts = [...parseBuildContexts(request.buildContexts ?? [], process.cwd()).values()].map((c) => (c.kind === 'local' ? c.dir : c.layoutDir));
  return [workspace.dir, contextDir, dockerfile, defaultCacheDir(), ...(request.cacheDir ? [path.resolve(request.cacheDir)] : []), ...outputs, ...contexts, ...[request.iidfile, request.digestFile, request.metadataFile].flatMap((f) => (f ? [path.resolve(f)] : []))];
}

/** A path as errors show it: relative to the working directory when inside it. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative !== '' && !relative.startsWith('..') ? relative : file;
}

async function planParsed(parsed: ParsedDockerfile, dockerfile: string, request: PlanRequest): Promise<BuildPlan> {
  const host = hostPlatform();
  return createPlan(parsed, dockerfile, {
    buildArgs: request.buildArgs ?? new Map(),
    ...(request.target !== undefined ? { target: request.target } : {}),
    buildPlatform: host,
    platforms: request.platforms?.length ? request.platforms : [host],
    buildContexts: parseBuildContexts(request.buildContexts ?? [], process.cwd()),
    resolveImage,
    resolveRegistryImage: (reference, platform) => pullBaseImage(reference, platform, request.registry ?? {}),
  });
}

async function resolveImage(context: Extract<NamedContext, { kind: 'oci-layout' }>, platform: Platform): Promise<ResolvedImage> {
  const layout = await OciLayout.open(context.layoutDir, { create: false });
  const selector = context.reference.startsWith('sha256:') ? { digest: context.reference as Digest } : { tag: context.reference };
  const image = await readLayoutImage(layout, selector, platform);
  return {
    layoutDir: layout.dir,
    reference: context.reference,
    manifestDigest: image.manifestDescriptor.digest,
    config: image.config,
    layers: image.layers,
  };
}
