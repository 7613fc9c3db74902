import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

const wrapper = 'commonjs-package-namespace';

/**
 * An esbuild plugin that gives `await import('pkg')` of a CommonJS package the named exports node
 * gives it (undici's `Agent`, `request`…): bundled as ESM, such an import would otherwise yield only
 * `default`. The import then loads a small module re-exporting, by name, what node's own import()
 * of that package holds, so the package stays a lazy chunk of its own.
 */
export function packageImportPlugin(): Plugin {
  return {
    name: 'commonjs-package-import',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.kind !== 'dynamic-import' || isBuiltin(args.path)) return undefined;
        const resolved = await build.resolve(args.path, { kind: 'import-statement', resolveDir: args.resolveDir });
        if (resolved.errors.length > 0 || resolved.external || !(await isCommonJs(resolved.path))) return undefined;
        // Named relative to the working directory: the bundle names each module in a comment.
        const relative = path.relative(build.initialOptions.absWorkingDir ?? process.cwd(), resolved.path);
        return { path: relative, namespace: wrapper, pluginData: { specifier: args.path, resolveDir: args.resolveDir, file: resolved.path } };
      });
      build.onLoad({ filter: /.*/, namespace: wrapper }, async (args) => {
        const { specifier, resolveDir, file } = args.pluginData as { specifier: string; resolveDir: string; file: string };
        const names = Object.keys(await import(pathToFileURL(file).href));
        const contents = [
          `import * as namespace from ${JSON.stringify(specifier)};`,
          ...names.map((name, i) => `const export${i} = namespace[${JSON.stringify(name)}];`),
          `export { ${names.map((name, i) => `export${i} as ${JSON.stringify(name)}`).join(', ')} };`,
        ].join('\n');
        return { contents, loader: 'js', resolveDir };
      });
    },
  };
}

/** Whether node loads `file` as CommonJS: a .cjs file, or a .js file whose package is not `"type": "module"`. */
async function isCommonJs(file: string): Promise<boolean> {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = await readFile(path.join(dir, 'package.json'), 'utf8').catch(() => undefined);
    if (manifest !== undefined) return (JSON.parse(manifest) as { type?: string }).type !== 'module';
    if (path.dirname(dir) === dir) return true;
  }
}
