/**
 * A real Debian bookworm (minbase) base image for tests, built once per machine with debootstrap
 * and kept in a cache directory shared by all test processes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hostPlatform } from '../../builder/plan/platform.js';
import { mountsUnder } from '../../builder/host/mountinfo.js';
import type { LayerEntry } from '../../layers/entry.js';
import { lstatOrUndefined } from '../../layers/fs-util.js';
import { withLockFile } from '../../layers/layout-lock.js';
import { OciLayout } from '../../layers/oci-layout.js';
import { MediaType, type ImageConfig, type Manifest } from '../../layers/types.js';
import { writeLayer } from '../../layers/write-layer.js';

const execFileAsync = promisify(execFile);

const TAG = 'bookworm';
const LAYOUT_NAME = 'debian-bookworm-minbase';
const TEMP_PREFIX = '.tmp-debian-';
/** debootstrap downloads and installs about 90 packages; give it plenty of time. */
const BUILD_TIMEOUT_MS = 30 * 60_000;
/** The PATH of Docker's official debian image. */
const DEBIAN_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Directories the container runtime provides: kept, but empty, as in Docker's images. */
const RUNTIME_DIRS = new Set(['dev', 'proc', 'sys']);

/** The test cache: `$TSBUILD_TEST_CACHE`, else `~/.cache/tsbuild-test`. */
export function testCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TSBUILD_TEST_CACHE ? path.resolve(env.TSBUILD_TEST_CACHE) : path.join(os.homedir(), '.cache', 'tsbuild-test');
}

/**
 * An OCI layout holding Debian bookworm minbase under `tag`, as one gzip layer. The first call on a
 * machine runs debootstrap (as root, against the mirror of the apt sources) and takes minutes;
 * later calls only check that the cached layout is there. Concurrent callers wait on a lock, and
 * the layout appears by an atomic rename, so nobody ever sees a half-built one.
 */
export async function debianBookwormImage(): Promise<{ layoutDir: string; tag: string }> {
  const cache = testCacheDir();
  const layoutDir = path.join(cache, LAYOUT_NAME);
  if (await isDirectory(layoutDir)) return { layoutDir, tag: TAG };
  if (process.getuid?.() !== 0) throw new Error('building the Debian test image needs root (debootstrap)');
  await mkdir(cache, { recursive: true });
  await withLockFile(
    path.join(cache, `${LAYOUT_NAME}.lock`),
    async () => {
      if (await isDirectory(layoutDir)) return;
      await removeLeftovers(cache);
      const temp = path.join(cache, TEMP_PREFIX + randomBytes(8).toString('hex'));
      try {
        const rootfs = path.join(temp, 'rootfs');
        await debootstrap(rootfs, await debianMirror());
        await tidy(rootfs);
        await writeImage(rootfs, path.join(temp, 'layout'));
        await rename(path.join(temp, 'layout'), layoutDir);
      } finally {
        await removeUnlessMounted(temp);
      }
    },
    { timeoutMs: BUILD_TIMEOUT_MS },
  );
  return { layoutDir, tag: TAG };
}

async function debootstrap(rootfs: string, mirror: string): Promise<void> {
  try {
    await execFileAsync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, mirror], {
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    const log = await readFile(path.join(rootfs, 'debootstrap', 'debootstrap.log'), 'utf8').catch(() => '');
    throw new Error(`debootstrap failed: ${(stderr || stdout || '').trim()}\n${log.slice(-4000)}`, { cause: error });
  }
  const mounts = await mountsUnder(rootfs);
  if (mounts.length > 0) throw new Error(`debootstrap left mounts behind: ${mounts.join(', ')}`);
}

/** Drops the downloaded packages and package lists, as Docker's debian image does (about 80 MB). */
async function tidy(rootfs: string): Promise<void> {
  const emptied: Array<[string, (name: string) => boolean]> = [
    ['var/cache/apt/archives', (name) => name.endsWith('.deb')],
    ['var/lib/apt/lists', (name) => name !== 'partial' && name !== 'lock'],
  ];
  for (const [dir, drop] of emptied) {
    for (const name of (await readdir(path.join(rootfs, dir))).filter(drop)) {
      await rm(path.join(rootfs, dir, name), { recursive: true, force: true });
    }
  }
}

/** The first `deb` source of the apt configuration that serves bookworm. */
export async function debianMirror(): Promise<string> {
  const files = ['/etc/apt/sources.list'];
  const partsDir = '/etc/apt/sources.list.d';
  const parts = await readdir(partsDir).catch(() => [] as string[]);
  files.push(...parts.sort().filter((name) => name.endsWith('.list') || name.endsWith('.sources')).map((name) => path.join(partsDir, name)));
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const sources = file.endsWith('.sources') ? deb822Sources(text) : oneLineSources(text);
    const match = sources.find((source) => source.suites.includes('bookworm') && /^https?:\/\//.test(source.uri));
    if (match) return match.uri;
  }
  throw new Error('no apt source serves Debian bookworm over http(s); cannot run debootstrap');
}

interface AptSource {
  uri: string;
  suites: string[];
}

/** `deb [options] URI suite components...` lines. */
function oneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim().split(/\s+/);
    if (line[0] === 'deb' && line.length >= 3) sources.push({ uri: line[1], suites: [line[2]] });
  }
  return sources;
}

/** deb822 stanzas (`Types:`, `URIs:`, `Suites:`), separated by blank lines. */
function deb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  const lines = text.split('\n').filter((line) => !line.startsWith('#'));
  for (const stanza of lines.join('\n').split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (match) fields.set(match[1].toLowerCase(), match[2].trim());
    }
    const words = (name: string): string[] => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb') || fields.get('enabled') === 'no') continue;
    for (const uri of words('uris')) sources.push({ uri, suites: words('suites') });
  }
  return sources;
}

/** Packs `rootfs` as one gzip layer into a new OCI layout at `dir`, tagged TAG. */
async function writeImage(rootfs: string, dir: string): Promise<void> {
  const layout = await OciLayout.open(dir, { create: true });
  const layer = await writeLayer(walkTree(rootfs), layout, { compression: 'gzip' });
  const created = new Date().toISOString();
  const config: ImageConfig = {
    created,
    ...hostPlatform(),
    config: { Env: [DEBIAN_PATH], Cmd: ['bash'] },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: 'debootstrap --variant=minbase bookworm' }],
  };
  const configDescriptor = await layout.writeJson(config, MediaType.ImageConfig);
  const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.ImageManifest, config: configDescriptor, layers: [layer.descriptor] };
  await layout.addImage(await layout.writeJson(manifest, MediaType.ImageManifest), [TAG]);
}

/**
 * Layer entries for everything under `root`, in the layer's own order (parents first, names
 * bytewise), so that the first path of a hardlinked inode is the one the others link to.
 */
async function* walkTree(root: string): AsyncGenerator<LayerEntry> {
  const firstPathOfInode = new Map<string, string>();
  async function* walk(dir: string, rel: string): AsyncGenerator<LayerEntry> {
    const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const full = path.join(dir, name);
      const entryPath = rel === '' ? name : `${rel}/${name}`;
      const info = await lstat(full);
      const base = { path: entryPath, mode: info.mode & 0o7777, uid: info.uid, gid: info.gid, mtime: Math.floor(info.mtimeMs / 1000) };
      if (info.isDirectory()) {
        yield { ...base, type: 'directory' };
        if (!(rel === '' && RUNTIME_DIRS.has(name))) yield* walk(full, entryPath);
      } else if (info.isSymbolicLink()) {
        yield { ...base, type: 'symlink', linkTarget: await readlink(full) };
      } else if (info.isFile()) {
        const inode = `${info.dev}:${info.ino}`;
        const first = info.nlink > 1 ? firstPathOfInode.get(inode) : undefined;
        if (first !== undefined) {
          yield { ...base, type: 'hardlink', linkTarget: first };
        } else {
          if (info.nlink > 1) firstPathOfInode.set(inode, entryPath);
          yield { ...base, type: 'file', size: info.size, open: () => createReadStream(full) };
        }
      } else if (info.isFIFO()) {
        yield { ...base, type: 'fifo' };
      } else if (info.isCharacterDevice() || info.isBlockDevice()) {
        yield { ...base, type: info.isCharacterDevice() ? 'char' : 'block', ...deviceNumbers(info.rdev) };
      }
      // Sockets cannot be stored in a layer; a finished debootstrap leaves none.
    }
  }
  yield* walk(root, '');
}

/** Splits a Linux dev_t (glibc's 64-bit encoding) into major and minor numbers. */
function deviceNumbers(rdev: number): { devMajor: number; devMinor: number } {
  const low = rdev % 2 ** 32;
  const high = Math.floor(rdev / 2 ** 32);
  return {
    devMajor: ((low >>> 8) & 0xfff) | (high & 0xfffff000),
    devMinor: ((low & 0xff) | ((low >>> 12) & 0xfff00) | ((high & 0xfff) << 20)) >>> 0,
  };
}

/** Removes temp dirs of builds that died; one still holding mounts is left alone rather than deleted through them. */
async function removeLeftovers(cache: string): Promise<void> {
  for (const name of await readdir(cache)) {
    if (name.startsWith(TEMP_PREFIX)) await removeUnlessMounted(path.join(cache, name));
  }
}

async function removeUnlessMounted(dir: string): Promise<void> {
  if ((await mountsUnder(dir)).length > 0) return;
  await rm(dir, { recursive: true, force: true });
}

async function isDirectory(dir: string): Promise<boolean> {
  return (await lstatOrUndefined(dir))?.isDirectory() ?? false;
}
