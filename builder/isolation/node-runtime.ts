import { readFileSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { isDynamicLoader, nodeBinary } from '../host/this-node.js';

/** How to start a copy of this node binary that needs nothing outside its own directory. */
export interface NodeLauncher {
  readonly command: string;
  /** Arguments before node's own (the loader's options and the node binary). */
  readonly args: readonly string[];
}

/** The shared objects a process has mapped, from a `/proc/PID/maps` text: ELF libraries and loaders, each once. */
export function mappedLibraries(maps: string): string[] {
  const files = new Set<string>();
  for (const line of maps.split('\n')) {
    const file = line.trim().split(/\s+/).slice(5).join(' ');
    if (file.startsWith('/') && !file.endsWith(' (deleted)') && /\.so(\.[0-9.]+)?$|\.node$/.test(path.basename(file))) files.add(file);
  }
  return [...files];
}

/** The dynamic loader among `libraries` (glibc's `ld-linux*.so.*`, musl's `ld-musl-*.so.1`). */
function findLoader(libraries: readonly string[]): string | undefined {
  return libraries.find(isDynamicLoader);
}

/**
 * Copies this node binary and every shared object it has mapped (C library, loader, libstdc++,
 * native addons such as koffi's) into `dir`, and returns how to start the copy through the copied
 * loader with `--library-path dir`. A build in place replaces `/` with an image that may lack
 * these libraries or hold other versions of them; the copy keeps working whatever `/` holds.
 */
export async function stashNodeRuntime(dir: string): Promise<NodeLauncher> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const libraries = mappedLibraries(await readFile('/proc/self/maps', 'utf8'));
  for (const file of libraries) {
    const name = path.basename(file);
    await copyFile(file, path.join(dir, name));
    // Maps show the real file (libstdc++.so.6.0.30); the loader looks for the major version's name.
    const major = name.replace(/(\.so\.\d+)\.[\d.]+$/, '$1');
    if (major !== name) await symlink(name, path.join(dir, major));
  }
  const node = path.join(dir, 'node');
  await copyFile(nodeBinary(), node);
  const loader = findLoader(libraries);
  return loader === undefined ? { command: node, args: [] } : { command: path.join(dir, path.basename(loader)), args: ['--library-path', dir, node] };
}

/** A command line that reaches its files only through directory descriptors passed as fd 3 onwards. */
export interface DescriptorLaunch {
  /** The host directories to open and pass, the first as fd 3. */
  readonly directories: readonly string[];
  readonly args: readonly string[];
}

/**
 * How to start this node binary through `/proc/self/fd/N` paths to the directories that hold it,
 * its shared objects and `files` (each then given to `args` as its `/proc/self/fd/N` path): a
 * process in another root and mount namespace can run it without any of them in its tree, once the
 * runtime passed it those directories. Nothing is copied.
 */
export function nodeThroughDescriptors(files: readonly string[], args: (fdPaths: readonly string[]) => readonly string[]): DescriptorLaunch {
  const libraries = mappedLibraries(readFileSync('/proc/self/maps', 'utf8'));
  const node = realpathSync(nodeBinary());
  const directories = [...new Set([node, ...libraries, ...files].map((file) => path.dirname(file)))];
  const through = (file: string): string => `/proc/self/fd/${3 + directories.indexOf(path.dirname(file))}/${path.basename(file)}`;
  const loader = findLoader(libraries);
  const libraryPath = [...new Set(libraries.map((file) => through(file).replace(/\/[^/]*$/, '')))].join(':');
  const launch = loader === undefined ? [through(node)] : [through(loader), '--library-path', libraryPath, through(node)];
  return { directories, args: [...launch, ...args(files.map(through))] };
}
