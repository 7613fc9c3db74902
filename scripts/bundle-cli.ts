import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { originalUrlPlugin } from './original-url-plugin.js';

// `npm run build`, after tsc: bundles the CLI in dist/cli into one CommonJS file,
// dist/cli-bundle/tsbuild.cjs, which dist/cli/start.cjs (what bin/tsbuild starts) compiles with
// V8's code cache. Node then reads one file instead of loading some 260 ES modules one by one, and
// with the cache skips parsing it. Modules imported with import() are still evaluated only when
// imported. The library (dist/builder) stays unbundled. The file is ASCII, so that start.cjs can
// read it as Latin-1, which takes half the time of decoding UTF-8.

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'cli-bundle');
/** The bundle's own URL, set before any of its modules runs (a module may shadow `require`). */
const bundleUrl = '__tsbuildBundleUrl';

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { tsbuild: path.join(dist, 'cli/command-line.js') },
  // Escapes every other character in code; comments (undici's) keep theirs, see below.
  charset: 'ascii',
  outdir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // A native addon, loaded with createRequire in layers/native/libc.ts.
  external: ['koffi'],
  banner: { js: `const ${bundleUrl} = require('node:url').pathToFileURL(__filename).href;` },
  plugins: [originalUrlPlugin(outdir, dist, bundleUrl)],
  logLevel: 'warning',
});

// Only comments can still hold other characters: they are written as escapes, which a comment leaves as they are.
const bundle = path.join(outdir, 'tsbuild.cjs');
const text = await readFile(bundle, 'utf8');
await writeFile(bundle, text.replace(/[^\x00-\x7f]/gu, (char) => `\\u{${char.codePointAt(0)!.toString(16)}}`));
