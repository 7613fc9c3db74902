/**
 * Checks an OCI image layout directory with our own checks and every OCI tool on the machine
 * (oci-image-tool, skopeo, umoci), failing with one AssertionError that lists every problem.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { normalizedName } from '../../builder/output/image-names.js';
import { validateImageSpec, type ImageSpecKind } from './image-spec-schema.js';

const execFileAsync = promisify(execFile);

const indexMediaTypes = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);
const manifestMediaTypes = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);
const refNameAnnotation = 'org.opencontainers.image.ref.name';
const blobDigest = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

type Compression = 'none' | 'gzip' | 'zstd';

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  data?: string;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** An image manifest reached from index.json. */
interface ReachedImage {
  descriptor: Descriptor;
  usesZstd: boolean;
}

/** State of one validation: problems found and what the walk reached. */
interface Walk {
  dir: string;
  problems: string[];
  images: Map<string, ReachedImage>;
  /** For every blob walked, the image manifests at or under it. */
  imagesUnder: Map<string, string[]>;
  /** Indexes that list attestation manifests beside their images. */
  attested: Set<string>;
}

/** Runs a command; a failure becomes an Error carrying the command line and its stderr. */
async function run(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    const detail = stderr?.trim() || message;
    throw new Error(`${command} ${args.join(' ')} failed:\n${detail}`);
  }
}

/** `skopeo inspect REF`, parsed; `platform` picks an entry when REF names an index. */
export async function skopeoInspect(ref: string, platform?: Platform): Promise<Record<string, unknown>> {
  const args = ['inspect'];
  if (platform) {
    args.push('--override-os', platform.os, '--override-arch', platform.architecture);
    if (platform.variant) args.push('--override-variant', platform.variant);
  }
  return JSON.parse(await run('skopeo', [...args, ref])) as Record<string, unknown>;
}

/**
 * Unpacks the image named `name` in layout `dir` into a fresh temporary rootfs with umoci. `name`
 * is the ref name (`1`), or the name a build was given (`app:1`), which tsbuild, like BuildKit,
 * records normalised in `io.containerd.image.name` with only the tag as ref name.
 * umoci 0.4.7 cannot read zstd layers, nor pick one platform from a tag naming several images.
 */
export async function unpackWithUmoci(
  dir: string,
  name: string,
): Promise<{ rootfs: string; cleanup(): Promise<void> }> {
  const parent = await mkdtemp(join(tmpdir(), 'tsbuild-umoci-'));
  const cleanup = (): Promise<void> => rm(parent, { recursive: true, force: true });
  const rootfs = join(parent, 'rootfs');
  const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
  try {
    const entry = await namedEntry(dir, name);
    await withView(resolve(dir), [{ ...entry, annotations: { [refNameAnnotation]: 'image' } }], async (view) => {
      await run('umoci', ['raw', 'unpack', ...rootless, '--image', `${view}:image`, rootfs]);
    });
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { rootfs, cleanup };
}

/** The one index.json entry with ref name `name`, else the one whose image name is `name` normalised. */
async function namedEntry(dir: string, name: string): Promise<Descriptor> {
  const { manifests } = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const byRef = manifests.filter((m) => m.annotations?.[refNameAnnotation] === name);
  if (byRef.length === 1) return byRef[0]!;
  const image = normalizedName(name);
  const byImage = manifests.filter((m) => m.annotations?.['io.containerd.image.name'] === image);
  if (byImage.length === 1) return byImage[0]!;
  throw new Error(`umoci raw unpack --image ${dir}:${name} not attempted: the layout has ${byRef.length} entries named ${name} and ${byImage.length} named ${image}, not exactly one`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDescriptor(value: unknown): value is Descriptor {
  return (
    isObject(value) &&
    typeof value.mediaType === 'string' &&
    typeof value.digest === 'string' &&
    typeof value.size === 'number'
  );
}

function layerCompression(mediaType: string): Compression | undefined {
  if (mediaType.endsWith('.tar')) return 'none';
  if (mediaType.endsWith('.tar+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar+zstd')) return 'zstd';
  return undefined;
}

function blobPath(dir: string, digest: string): string {
  const [algorithm = '', encoded = ''] = digest.split(':');
  return join(dir, 'blobs', algorithm, encoded);
}

function hashInto(hash: Hash): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done();
    },
  });
}

/** `<algorithm>:<hex>` of a file, hashed as stored. */
async function fileDigest(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(path), hashInto(hash));
  return `${algorithm}:${hash.digest('hex')}`;
}

/** SHA-256 of the stdout of `zstd -dc path`. */
async function zstdDiffId(path: string): Promise<string> {
  const child = spawn('zstd', ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  const hash = createHash('sha256');
  const [, code] = await Promise.all([pipeline(child.stdout, hashInto(hash)), exited]);
  if (code !== 0) throw new Error(`zstd -dc failed: ${stderr.trim()}`);
  return `sha256:${hash.digest('hex')}`;
}

/** The diff_id of a layer: SHA-256 of its uncompressed tar stream. */
async function diffIdOf(path: string, compression: Compression): Promise<string> {
  if (compression === 'none') return fileDigest(path, 'sha256');
  if (compression === 'zstd') return zstdDiffId(path);
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), createGunzip(), hashInto(hash));
  return `sha256:${hash.digest('hex')}`;
}

function label(where: string, descriptor: Descriptor): string {
  return `${where} (${descriptor.digest.slice(0, 19)}…)`;
}

/** Checks that the blob a descriptor names exists with its size and digest; true when it does. */
async function checkBlob(walk: Walk, descriptor: Descriptor, where: string): Promise<boolean> {
  const at = label(where, descriptor);
  if (!blobDigest.test(descriptor.digest)) {
    walk.problems.push(`${at}: digest ${descriptor.digest} is not sha256/sha512 lowercase hex`);
    return false;
  }
  if (descriptor.data !== undefined) {
    const embedded = Buffer.from(descriptor.data, 'base64');
    const algorithm = descriptor.digest.split(':')[0] ?? '';
    const digest = `${algorithm}:${createHash(algorithm).update(embedded).digest('hex')}`;
    if (embedded.length !== descriptor.size || digest !== descriptor.digest) {
      walk.problems.push(`${at}: embedded data does not match the descriptor's size and digest`);
    }
  }
  const path = blobPath(walk.dir, descriptor.digest);
  const size = await stat(path).then(
    (info) => (info.isFile() ? info.size : undefined),
    () => undefined,
  );
  if (size === undefined) {
    walk.problems.push(`${at}: blob ${descriptor.digest} is missing`);
    return false;
  }
  if (size !== descriptor.size) {
    walk.problems.push(`${at}: blob is ${size} bytes but the descriptor says ${descriptor.size}`);
    return false;
  }
  const actual = await fileDigest(path, descriptor.digest.split(':')[0] ?? '');
  if (actual !== descriptor.digest) {
    walk.problems.push(`${at}: blob content has digest ${actual}, not ${descriptor.digest}`);
    return false;
  }
  return true;
}

/** Parses a JSON document and schema-validates it; undefined (with problems noted) when invalid. */
function parseDocument(
  walk: Walk,
  text: string,
  kind: ImageSpecKind,
  where: string,
): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    walk.problems.push(`${where}: not JSON: ${(error as Error).message}`);
    return undefined;
  }
  const problems = validateImageSpec(kind, value);
  walk.problems.push(...problems.map((problem) => `${where}: ${kind} ${problem}`));
  return problems.length === 0 && isObject(value) ? value : undefined;
}

async function readBlobDocument(
  walk: Walk,
  descriptor: Descriptor,
  kind: ImageSpecKind,
  where: string,
): Promise<Record<string, unknown> | undefined> {
  if (!(await checkBlob(walk, descriptor, where))) return undefined;
  const text = await readFile(blobPath(walk.dir, descriptor.digest), 'utf8');
  const document = parseDocument(walk, text, kind, label(where, descriptor));
  if (document && document.mediaType !== undefined && document.mediaType !== descriptor.mediaType) {
    const actual = String(document.mediaType);
    const expected = descriptor.mediaType;
    walk.problems.push(`${label(where, descriptor)}: mediaType ${actual} differs from its descriptor's ${expected}`);
  }
  return document;
}

/** Walks one descriptor of an index: a nested index or an image manifest. */
async function walkDescriptor(walk: Walk, descriptor: Descriptor, where: string): Promise<void> {
  if (walk.imagesUnder.has(descriptor.digest)) return;
  walk.imagesUnder.set(descriptor.digest, []);
  if (indexMediaTypes.has(descriptor.mediaType)) {
    const index = await readBlobDocument(walk, descriptor, 'index', where);
    if (index) await walkIndex(walk, index, descriptor.digest, label(where, descriptor));
  } else if (manifestMediaTypes.has(descriptor.mediaType) && descriptor.annotations?.[REFERENCE_TYPE] === ATTESTATION_MANIFEST) {
    await walkAttestationManifest(walk, descriptor, where);
  } else if (manifestMediaTypes.has(descriptor.mediaType)) {
    await walkManifest(walk, descriptor, where);
  } else {
    const type = descriptor.mediaType;
    walk.problems.push(`${label(where, descriptor)}: media type ${type} is neither an index nor a manifest`);
  }
}

/** BuildKit's attestation manifests (`docs/attestations/attestation-storage.md`) hold in-toto statements, not filesystems. */
const REFERENCE_TYPE = 'vnd.docker.reference.type';
const ATTESTATION_MANIFEST = 'attestation-manifest';
const IN_TOTO = 'application/vnd.in-toto+json';

/** An attestation manifest: its config and statement blobs are checked and parsed, never unpacked as layers. */
async function walkAttestationManifest(walk: Walk, descriptor: Descriptor, where: string): Promise<void> {
  const manifest = await readBlobDocument(walk, descriptor, 'manifest', where);
  if (!manifest) return;
  const at = label(where, descriptor);
  await readBlobDocument(walk, manifest.config as Descriptor, 'config', `${at} > config`);
  for (const [i, layer] of (manifest.layers as unknown[]).filter(isDescriptor).entries()) {
    const layerAt = `${at} > layers[${i}]`;
    if (layer.mediaType !== IN_TOTO) {
      walk.problems.push(`${label(layerAt, layer)}: ${layer.mediaType} in an attestation manifest is not ${IN_TOTO}`);
    } else if (await checkBlob(walk, layer, layerAt)) {
      const text = await readFile(blobPath(walk.dir, layer.digest), 'utf8');
      if (!isObject(JSON.parse(text) as unknown)) walk.problems.push(`${label(layerAt, layer)}: an in-toto statement is not a JSON object`);
    }
  }
}

async function walkIndex(walk: Walk, index: Record<string, unknown>, digest: string, where: string): Promise<void> {
  const entries = (index.manifests as unknown[]).filter(isDescriptor);
  const images = new Set<string>();
  for (const [i, entry] of entries.entries()) {
    if (entry.annotations?.[REFERENCE_TYPE] === ATTESTATION_MANIFEST) walk.attested.add(digest);
    await walkDescriptor(walk, entry, `${where} > manifests[${i}]`);
    for (const image of walk.imagesUnder.get(entry.digest) ?? []) images.add(image);
  }
  walk.imagesUnder.set(digest, [...images]);
}

async function walkManifest(walk: Walk, descriptor: Descriptor, where: string): Promise<void> {
  const manifest = await readBlobDocument(walk, descriptor, 'manifest', where);
  if (!manifest) return;
  const at = label(where, descriptor);
  const layers = (manifest.layers as unknown[]).filter(isDescriptor);
  walk.images.set(descriptor.digest, {
    descriptor,
    usesZstd: layers.some((layer) => layerCompression(layer.mediaType) === 'zstd'),
  });
  walk.imagesUnder.set(descriptor.digest, [descriptor.digest]);

  const configDescriptor = manifest.config as Descriptor;
  const config = await readBlobDocument(walk, configDescriptor, 'config', `${at} > config`);
  const rootfs = config?.rootfs as { diff_ids: string[] } | undefined;
  const diffIds = rootfs?.diff_ids;
  if (diffIds && diffIds.length !== layers.length) {
    walk.problems.push(`${at}: config has ${diffIds.length} diff_ids for ${layers.length} layers`);
  }
  for (const [i, layer] of layers.entries()) {
    const where = `${at} > layers[${i}]`;
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) {
      walk.problems.push(`${label(where, layer)}: ${layer.mediaType} is not a tar layer media type`);
      continue;
    }
    if (!(await checkBlob(walk, layer, where))) continue;
    let diffId: string;
    try {
      diffId = await diffIdOf(blobPath(walk.dir, layer.digest), compression);
    } catch (error) {
      const reason = (error as Error).message;
      walk.problems.push(`${label(where, layer)}: cannot decompress (${compression}): ${reason}`);
      continue;
    }
    const expected = diffIds?.[i];
    if (diffIds && diffId !== expected) {
      const problem = `uncompressed digest ${diffId} differs from diff_ids[${i}] ${String(expected)}`;
      walk.problems.push(`${label(where, layer)}: ${problem}`);
    }
  }
}

/** Runs a tool check, turning a failure into a problem. */
async function toolCheck(walk: Walk, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (error) {
    walk.problems.push((error as Error).message);
  }
}

/** `skopeo inspect` must succeed and report `digest` (and `platform`'s os and architecture, if given). */
async function inspectAndCompare(walk: Walk, ref: string, digest: string, platform?: Platform): Promise<void> {
  await toolCheck(walk, async () => {
    const inspected = await skopeoInspect(ref, platform);
    if (inspected.Digest !== digest) {
      throw new Error(`skopeo inspect ${ref} reports digest ${String(inspected.Digest)}, expected ${digest}`);
    }
    if (platform && (inspected.Os !== platform.os || inspected.Architecture !== platform.architecture)) {
      const got = `${String(inspected.Os)}/${String(inspected.Architecture)}`;
      throw new Error(`skopeo inspect ${ref} for ${platform.os}/${platform.architecture} picked ${got}`);
    }
  });
}

async function unpackAndDiscard(walk: Walk, dir: string, tag: string): Promise<void> {
  await toolCheck(walk, async () => {
    const { cleanup } = await unpackWithUmoci(dir, tag);
    await cleanup();
  });
}

/** Hard-links (or, across file systems, copies) every blob; oci-image-tool rejects symlinks. */
async function shareBlobs(from: string, to: string): Promise<void> {
  for (const algorithm of await readdir(from)) {
    await mkdir(join(to, algorithm), { recursive: true });
    for (const name of await readdir(join(from, algorithm))) {
      const source = join(from, algorithm, name);
      const target = join(to, algorithm, name);
      await link(source, target).catch(() => copyFile(source, target));
    }
  }
}

/**
 * A temporary layout sharing `dir`'s blobs whose index.json lists just `entries`, so the tools
 * can be pointed at a subset of the layout or at an image no tag names on its own.
 */
async function withView(dir: string, entries: Descriptor[], use: (view: string) => Promise<void>): Promise<void> {
  const view = await mkdtemp(join(tmpdir(), 'tsbuild-layout-view-'));
  try {
    await copyFile(join(dir, 'oci-layout'), join(view, 'oci-layout'));
    await shareBlobs(join(dir, 'blobs'), join(view, 'blobs'));
    await writeFile(join(view, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: entries }));
    await use(view);
  } finally {
    await rm(view, { recursive: true, force: true });
  }
}

function leadsToZstd(walk: Walk, entry: Descriptor): boolean {
  return (walk.imagesUnder.get(entry.digest) ?? []).some((digest) => walk.images.get(digest)?.usesZstd);
}

/**
 * oci-image-tool 1.0.0-rc1 has no `--type imageLayout`: `--type image` detects a layout and,
 * without `--ref`, validates every entry of index.json. Several `--ref`s must all match one
 * entry, and a name that matches nothing passes, so it runs once without `--ref`. It predates
 * zstd layers, so entries leading to them are left out of what it sees.
 */
async function checkWithOciImageTool(walk: Walk, topLevel: Descriptor[]): Promise<void> {
  // It takes the statements of attestation manifests for layers: an index with them is seen through its images.
  const imagesOf = (entry: Descriptor): Descriptor[] =>
    walk.attested.has(entry.digest) ? (walk.imagesUnder.get(entry.digest) ?? []).flatMap((d) => walk.images.get(d)?.descriptor ?? []) : [entry];
  const supported = topLevel.filter((entry) => !leadsToZstd(walk, entry)).flatMap(imagesOf);
  const validate = async (dir: string): Promise<void> => {
    await run('oci-image-tool', ['validate', '--type', 'image', dir]);
  };
  if (supported.length === topLevel.length && walk.attested.size === 0) await toolCheck(walk, () => validate(walk.dir));
  else if (supported.length > 0) await toolCheck(walk, () => withView(walk.dir, supported, validate));
}

/** The entries of the index `entry` names that carry a platform (already validated by the walk). */
async function platformChildren(dir: string, entry: Descriptor): Promise<Array<Descriptor & { platform: Platform }>> {
  const index = JSON.parse(await readFile(blobPath(dir, entry.digest), 'utf8')) as { manifests: Descriptor[] };
  return index.manifests.filter(
    (child): child is Descriptor & { platform: Platform } =>
      child.platform !== undefined && manifestMediaTypes.has(child.mediaType),
  );
}

/**
 * skopeo and umoci on every tag, then on every image no tag led them to alone. umoci 0.4.7
 * cannot read zstd layers and unpacks a tag only when it leads to exactly one image.
 */
async function checkWithSkopeoAndUmoci(walk: Walk, topLevel: Descriptor[]): Promise<void> {
  const { dir } = walk;
  const inspected = new Set<string>();
  const unpacked = new Set<string>();
  // A ref name listed more than once (BuildKit names `app:1` and `keep:1` both `1`) does not lead
  // the tools to one entry: those images are checked one by one below.
  const tags = topLevel.map((entry) => entry.annotations?.[refNameAnnotation]);
  for (const entry of topLevel) {
    const tag = entry.annotations?.[refNameAnnotation];
    if (tag === undefined || tags.indexOf(tag) !== tags.lastIndexOf(tag)) continue;
    const ref = `oci:${dir}:${tag}`;
    if (manifestMediaTypes.has(entry.mediaType)) {
      await inspectAndCompare(walk, ref, entry.digest);
      inspected.add(entry.digest);
    } else {
      // For an index, skopeo reports the index digest and the platform it picked.
      for (const child of await platformChildren(dir, entry)) {
        await inspectAndCompare(walk, ref, entry.digest, child.platform);
      }
    }
    const under = walk.imagesUnder.get(entry.digest) ?? [];
    const only = under.length === 1 ? walk.images.get(under[0] ?? '') : undefined;
    // umoci finds a tag ambiguous when its index lists attestation manifests beside the image.
    if (only && !only.usesZstd && !walk.attested.has(entry.digest)) {
      await unpackAndDiscard(walk, dir, tag);
      unpacked.add(only.descriptor.digest);
    }
  }

  for (const { descriptor, usesZstd } of walk.images.values()) {
    const inspect = !inspected.has(descriptor.digest);
    const unpack = !usesZstd && !unpacked.has(descriptor.digest);
    if (!inspect && !unpack) continue;
    const { mediaType, digest, size } = descriptor;
    const entry = { mediaType, digest, size, annotations: { [refNameAnnotation]: 'image' } };
    await toolCheck(walk, () =>
      withView(dir, [entry], async (view) => {
        if (inspect) await inspectAndCompare(walk, `oci:${view}:image`, digest);
        if (unpack) await unpackAndDiscard(walk, view, 'image');
      }),
    );
  }
}

/**
 * Validates the OCI layout in `dir`: the oci-layout file and index.json against the schemas;
 * every manifest reachable from index.json (through nested indexes) with its config and layers
 * present, of the right size and digest, and schema-valid; `rootfs.diff_ids` matching the
 * uncompressed layers. Once those pass, oci-image-tool, `skopeo inspect` and `umoci raw unpack`
 * run on every tag and image. Fails with an AssertionError listing every problem found.
 */
export async function validateLayout(dir: string): Promise<void> {
  const walk: Walk = { dir: resolve(dir), problems: [], images: new Map(), imagesUnder: new Map(), attested: new Set() };
  const readTop = (name: string): Promise<string | undefined> =>
    readFile(join(walk.dir, name), 'utf8').catch(() => {
      walk.problems.push(`${name} is missing`);
      return undefined;
    });

  const layoutText = await readTop('oci-layout');
  if (layoutText !== undefined) parseDocument(walk, layoutText, 'layout', 'oci-layout');
  const indexText = await readTop('index.json');
  const index = indexText === undefined ? undefined : parseDocument(walk, indexText, 'index', 'index.json');
  if (index) {
    await walkIndex(walk, index, 'index.json', 'index.json');
    if (walk.problems.length === 0) {
      const topLevel = (index.manifests as unknown[]).filter(isDescriptor);
      await checkWithOciImageTool(walk, topLevel);
      await checkWithSkopeoAndUmoci(walk, topLevel);
    }
  }
  if (walk.problems.length > 0) {
    const listed = walk.problems.map((problem) => `  - ${problem.replaceAll('\n', '\n    ')}`).join('\n');
    assert.fail(`OCI layout ${walk.dir} is invalid:\n${listed}`);
  }
}
