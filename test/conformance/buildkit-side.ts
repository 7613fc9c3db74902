/**
 * Builds a case with BuildKit (a private dockerd, DOCKER_BUILDKIT=1) and turns the image into an
 * OCI layout: `docker save`, then skopeo from the docker archive. The snapshot is then taken
 * exactly as for tsbuild. The config is read from the daemon's image store, byte for byte: the
 * conversion to OCI drops Docker-only fields (Shell, Healthcheck, OnBuild), and `docker save`
 * refuses an image without layers.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dockerd } from '../../bench/compare/dockerd.js';
import { runCommand } from '../../bench/compare/command.js';
import { buildArgs, type BaseReferences, type ConformanceCase } from './cases.js';

export const BUILDKIT_REF_NAME = 'conformance';

/**
 * Builds `dockerfile` (the case's, or its hand-written reference) in `context` and writes the image
 * into `layoutDir`; a failed build throws with BuildKit's last lines.
 */
export async function buildWithBuildkit(daemon: Dockerd, dataRoot: string, testCase: ConformanceCase, dockerfile: string, context: string, bases: BaseReferences, layoutDir: string): Promise<BuildkitImage> {
  const tag = `conformance/${testCase.name.toLowerCase()}:latest`;
  // Host networking: the private daemon has no bridge. It changes nothing in the image.
  const args = ['build', '--quiet', '--no-cache', '--network=host', '-f', dockerfile, '-t', tag];
  for (const [name, value] of buildArgs(testCase, bases)) args.push('--build-arg', `${name}=${value}`);
  if (testCase.options.target !== undefined) args.push('--target', testCase.options.target);
  if (testCase.options.platform !== undefined) args.push('--platform', testCase.options.platform);
  await daemon.docker([...args, context]);
  const archive = `${layoutDir}.tar`;
  try {
    const id = (await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', tag])).stdout.trim();
    const config = await storedConfig(dataRoot, id);
    if (((config.rootfs as { diff_ids?: unknown[] } | undefined)?.diff_ids ?? []).length === 0) return { config };
    await daemon.docker(['save', '-o', archive, tag]);
    await runCommand('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `oci:${layoutDir}:${BUILDKIT_REF_NAME}`]);
    return { config, layoutDir };
  } finally {
    await rm(archive, { force: true });
    await daemon.docker(['rmi', '--force', tag]).catch(() => undefined);
  }
}

export interface BuildkitImage {
  readonly config: Record<string, unknown>;
  /** The OCI layout holding the image's layers, named `conformance`; absent for an image without layers. */
  readonly layoutDir?: string;
}

/** The config blob of image `id` (`sha256:…`) as the daemon stored it, whatever its storage driver. */
async function storedConfig(dataRoot: string, id: string): Promise<Record<string, unknown>> {
  const [, hex] = id.split(':');
  for (const driver of await readdir(join(dataRoot, 'image'))) {
    const file = join(dataRoot, 'image', driver, 'imagedb', 'content', 'sha256', hex!);
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return JSON.parse(text) as Record<string, unknown>;
  }
  throw new Error(`dockerd stored no config for ${id} under ${dataRoot}`);
}

/** BuildKit's version inside this dockerd, for the golden files' header. */
export async function buildkitVersion(daemon: Dockerd): Promise<string> {
  const { stdout } = await daemon.docker(['version', '--format', '{{.Server.Version}}']);
  return `Docker ${stdout.trim()} (built-in BuildKit, DOCKER_BUILDKIT=1)`;
}
