import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { originalUrlPlugin } from './original-url-plugin.js';
import { packageImportPlugin } from './package-import-plugin.js';

// `npm run build`, after tsc: bundles the CLI in dist/cli into dist/cli-bundle, which bin/tsbuild
// starts. Node then reads a few files instead of loading some 260 modules one by one, which was
// about 45% of a small build's time. Every dynamic import() stays a chunk of its own, loaded only
// when it is today. The library (dist/builder) stays unbundled.

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = path.join(root, 'dist');
const outdir = path.join(dist, 'cli-bundle');

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: path.join(dist, 'cli/main.js') },
  outdir,
  // Chunks sit beside main.js: the plugin resolves original files from a chunk's own URL.
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // A native addon, loaded with createRequire in layers/native/libc.ts.
  external: ['koffi'],
  // CommonJS packages (undici, tar-stream) call require() for node's modules: give each chunk one.
  banner: { js: "import { createRequire as __tsbuildCreateRequire } from 'node:module';\nconst require = __tsbuildCreateRequire(import.meta.url);" },
  plugins: [originalUrlPlugin(outdir, dist), packageImportPlugin()],
  logLevel: 'warning',
});
