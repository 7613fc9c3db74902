import { lstat, mkdir, mkdtemp, readlink, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isErrnoCode } from '../../layers/fs-util.js';
import type { BindMount } from './backend.js';
import { OciRuntimeBackend } from './oci-runtime.js';
import { findExecutable, pathDirs } from '../host/host-tools.js';
import { probeKey, rememberedRuntime, rememberRuntime, type OciRuntime } from './runtime-probe-cache.js';

/** Host directories the probe container borrows (read-only) to run the host's `true`. */
const hostSystemDirs = ['usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** Mirrors the host's system directories into `rootfs`: symlinks are copied, directories become read-only binds. */
async function borrowHostSystem(rootfs: string): Promise<BindMount[]> {
  const binds: BindMount[] = [];
  for (const name of hostSystemDirs) {
    const host = `/${name}`;
    let stats;
    try {
      stats = await lstat(host);
    } catch (error) {
      if (isErrnoCode(error, 'ENOENT')) continue;
      throw error;
    }
    if (stats.isSymbolicLink()) {
      await symlink(await readlink(host), join(rootfs, name));
    } else if (stats.isDirectory()) {
      await mkdir(join(rootfs, name));
      binds.push({ destination: host, source: host, readonly: true });
    }
  }
  return binds;
}

/**
 * Why `runtimePath` cannot run a container here (the first line it printed), or undefined when it
 * can: it runs the host's `true` in a throwaway rootfs.
 */
async function containerProblem(runtimePath: string): Promise<string | undefined> {
  let dir: string | undefined;
  try {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-runtime-probe-'));
    const rootfs = join(dir, 'rootfs');
    const scratchDir = join(dir, 'scratch');
    await mkdir(rootfs);
    for (const name of ['proc', 'dev', 'sys']) await mkdir(join(rootfs, name));
    const binds = await borrowHostSystem(rootfs);
    const backend = new OciRuntimeBackend({ runtimePath, killGraceMs: 1000 });
    let output = '';
    const result = await backend.run({
      rootfs, args: ['true'], env: ['PATH=/usr/bin:/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] },
      hostname: 'probe', network: 'none', binds, scratchDir,
      stdout: () => {}, stderr: (chunk) => (output += chunk.toString('utf8')), signal: AbortSignal.timeout(15_000),
    });
    if (result.exitCode === 0) return undefined;
    return firstLine(output) ?? `exit code ${result.exitCode}`;
  } catch (error) {
    return firstLine((error as Error).message) ?? 'it failed';
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

function firstLine(text: string): string | undefined {
  return text.split('\n').map((line) => line.trim()).find((line) => line !== '');
}

/** The runtime found, or why none works: each runtime tried with its failure, or that none is installed. */
type Detection = { readonly runtime: OciRuntime } | { readonly runtime?: undefined; readonly problem: string };

async function detect(cacheDir: string | undefined): Promise<Detection> {
  const candidates: OciRuntime[] = [];
  for (const name of ['crun', 'runc'] as const) {
    const path = findExecutable(name, pathDirs());
    if (path !== undefined) candidates.push({ path, name });
  }
  const key = cacheDir === undefined || candidates.length === 0 ? undefined : await probeKey(candidates);
  const remembered = key === undefined ? undefined : await rememberedRuntime(cacheDir!, key);
  if (remembered) return { runtime: remembered };
  const problems: string[] = [];
  for (const runtime of candidates) {
    const problem = await containerProblem(runtime.path);
    if (problem === undefined) {
      if (key !== undefined) await rememberRuntime(cacheDir!, key, runtime);
      return { runtime };
    }
    problems.push(`${runtime.name}: ${problem}`);
  }
  return { problem: problems.length === 0 ? 'neither runc nor crun is installed' : problems.join('; ') };
}

let detected: Promise<Detection> | undefined;

/**
 * The OCI runtime to use: crun or runc from PATH, crun first, each kept only when a probe
 * container actually runs (crun 1.8, for one, refuses hosts with hybrid cgroups). The probe runs
 * as this process is: as real root, or as uid 0 of a user namespace, where the container gets a
 * nested user namespace (see OciRuntimeBackend); an unprivileged process outside one finds none.
 * Probed once per process, and with `cacheDir` remembered there for later builds while the
 * runtimes, the kernel and this process's ids stay the same.
 */
export async function findOciRuntime(cacheDir?: string): Promise<OciRuntime | undefined> {
  detected ??= detect(cacheDir);
  return (await detected).runtime;
}

/** Why `findOciRuntime` found no runtime (one line), or undefined when it found one. */
export async function ociRuntimeProblem(): Promise<string | undefined> {
  detected ??= detect(undefined);
  const detection = await detected;
  return detection.runtime === undefined ? detection.problem : undefined;
}
