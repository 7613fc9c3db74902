/**
 * A deterministic source tree shaped like a node_modules directory: packages with nested folders
 * of JavaScript-like text files of varied sizes. The same arguments always give the same bytes, so
 * every builder and every bench run copies the same context.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const FILES_PER_PACKAGE = 40;
const FOLDERS = ['', 'lib/', 'lib/internal/', 'dist/esm/', 'dist/cjs/util/'];
const WORDS = [
  'const', 'let', 'return', 'function', 'export', 'import', 'from', 'require', 'module', 'exports',
  'value', 'options', 'callback', 'error', 'result', 'buffer', 'length', 'index', 'undefined', 'null',
  'true', 'false', 'this', 'new', 'Promise', 'await', 'async', 'if', 'else', 'for', 'while', 'throw',
  '=', '===', '!==', '=>', '(', ')', '{', '}', '[', ']', ';', ',', '.', '+', '0', '1',
];

/** A small seeded generator (xorshift32): fast, and identical on every machine. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** File sizes with a spread like real sources (small to ~50× larger), summing exactly to `totalBytes`. */
function fileSizes(count: number, totalBytes: number, next: () => number): number[] {
  const weights = Array.from({ length: count }, () => Math.exp((next() / 2 ** 32) * 4));
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((weight) => Math.floor((weight / sum) * totalBytes));
  sizes[count - 1]! += totalBytes - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/** `size` bytes of text made of code-like words, spaces and line breaks. */
function sourceText(size: number, next: () => number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    const r = next();
    const word = WORDS[r % WORDS.length]!;
    at += out.write(word, at, 'latin1');
    if (at < size) out[at++] = (r >>> 8) % 9 === 0 ? 0x0a : 0x20;
  }
  return out;
}

/** The path of file `index` of the tree, relative to its root. */
export function moduleTreePath(index: number): string {
  const pkg = Math.floor(index / FILES_PER_PACKAGE);
  const inPkg = index % FILES_PER_PACKAGE;
  return `node_modules/pkg-${pkg}/${FOLDERS[inPkg % FOLDERS.length]}file-${inPkg}.js`;
}

/** Writes `fileCount` files totalling `totalBytes` under `root`. */
export async function writeModuleTree(root: string, fileCount: number, totalBytes: number): Promise<void> {
  const next = xorshift(0x5eed);
  const sizes = fileSizes(fileCount, totalBytes, next);
  const made = new Set<string>();
  for (let index = 0; index < fileCount; index++) {
    const file = join(root, moduleTreePath(index));
    const dir = dirname(file);
    if (!made.has(dir)) {
      await mkdir(dir, { recursive: true });
      made.add(dir);
    }
    await writeFile(file, sourceText(sizes[index]!, next));
  }
}
