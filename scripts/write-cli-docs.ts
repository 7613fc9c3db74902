import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cliReference } from '../cli/cli-reference.js';

// `npm run docs`: regenerates docs/cli.md from the flag definitions (run from dist/scripts).
const target = fileURLToPath(new URL('../../docs/cli.md', import.meta.url));
writeFileSync(target, cliReference());
process.stdout.write(`wrote ${target}\n`);
