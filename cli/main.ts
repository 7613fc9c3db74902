#!/usr/bin/env node
// The unbundled CLI; bin/tsbuild starts the bundled one (see start.cts).
import { answerVersion } from './version-flag.cjs';

if (!answerVersion(process.argv.slice(2))) await (await import('./command-line.js')).runCommandLine(process.argv[1]!);
