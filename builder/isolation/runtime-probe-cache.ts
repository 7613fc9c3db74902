/**
 * Remembers, across builds, which OCI runtime a probe container ran with: a probe costs a whole
 * container start, a large share of a short build. The record is keyed by what could change the
 * answer: each candidate runtime's path and file identity (a reinstall or upgrade changes it), the
 * kernel, and this process's uid and user namespace mapping. Only a runtime that worked is kept, so
 * a host that is fixed later is probed again.
 */
import { readFileSync, statSync } from 'node:fs';
import { rename, writeFile, mkdir } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';

/** An OCI runtime binary that ran a probe container here. */
export interface OciRuntime {
  readonly path: string;
  readonly name: 'runc' | 'crun';
}

const FILE = 'runtime-probe.json';

interface ProbeRecord {
  readonly key: string;
  readonly runtime: OciRuntime;
}

/** The probe key of the candidate runtimes found on PATH, in the order they are tried. */
export async function probeKey(candidates: readonly OciRuntime[]): Promise<string> {
  const identities = [];
  for (const { path, name } of candidates) {
    const stats = statSync(path);
    identities.push([name, path, stats.dev, stats.ino, stats.size, stats.mtimeMs, stats.ctimeMs]);
  }
  let idMap = '';
  try {
    idMap = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    // No user namespaces here: the key goes without.
  }
  return JSON.stringify({ identities, kernel: release(), uid: process.getuid?.() ?? 0, idMap: idMap.trim().split(/\s+/) });
}

/** The runtime remembered under `key` in `dir`, if any. */
export async function rememberedRuntime(dir: string, key: string): Promise<OciRuntime | undefined> {
  try {
    const record = JSON.parse(readFileSync(join(dir, FILE), 'utf8')) as Partial<ProbeRecord>;
    const runtime = record.runtime;
    if (record.key !== key || typeof runtime?.path !== 'string' || (runtime.name !== 'runc' && runtime.name !== 'crun')) return undefined;
    return { path: runtime.path, name: runtime.name };
  } catch {
    return undefined;
  }
}

/** Keeps `runtime` under `key` in `dir`; a cache that cannot be written only costs the next build a probe. */
export async function rememberRuntime(dir: string, key: string, runtime: OciRuntime): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const temp = join(dir, `${FILE}.${process.pid}.tmp`);
    await writeFile(temp, JSON.stringify({ key, runtime } satisfies ProbeRecord));
    await rename(temp, join(dir, FILE));
  } catch {
    // Nothing to do: the probe result still serves this build.
  }
}
