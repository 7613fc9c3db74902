import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Plugin } from 'esbuild';

/**
 * An esbuild plugin that gives every bundled module the `import.meta.url` of its own file, as
 * if it had not been bundled: tsbuild finds files beside its modules that way (the step server,
 * the namespace launcher, the workspace watchdog, package.json). Each `import.meta.url` becomes
 * that file's path relative to the bundle's folder, resolved against `bundleUrl`, an expression
 * for the URL of the bundle file itself, so an installation can move. The bundle must be written
 * to `outdir` itself.
 *
 * Files under `strictRoot` may use no other `import.meta` property: the bundle could not give it
 * its original value, so the build fails, naming the file.
 */
export function originalUrlPlugin(outdir: string, strictRoot: string, bundleUrl: string): Plugin {
  return {
    name: 'original-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.m?js$/, namespace: 'file' }, async ({ path: file }) => {
        const source = await readFile(file, 'utf8');
        if (!source.includes('import.meta')) return undefined;
        if (isInside(strictRoot, file)) {
          const other = /\bimport\.meta\b(?!\.url\b)/.exec(source);
          if (other) throw new Error(`${path.relative(strictRoot, file)}:${lineOf(source, other.index)}: only import.meta.url can be given its original value in the bundle`);
        }
        const relative = path.relative(outdir, file).split(path.sep).join('/');
        const original = `new URL(${JSON.stringify(relative)}, ${bundleUrl}).href`;
        return { contents: source.replace(/\bimport\.meta\.url\b/g, original), loader: 'js', resolveDir: path.dirname(file) };
      });
    },
  };
}

function isInside(root: string, file: string): boolean {
  const relative = path.relative(root, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split('\n').length;
}
