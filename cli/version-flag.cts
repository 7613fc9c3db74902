import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Answers `tsbuild --version` (or `-V`) given alone, from package.json, before the CLI or the
 * library loads: it then costs no more than starting node. False for any other command line.
 */
export function answerVersion(args: readonly string[]): boolean {
  if (args.length !== 1 || (args[0] !== '--version' && args[0] !== '-V')) return false;
  const manifest = JSON.parse(readFileSync(path.join(__dirname, '../../package.json'), 'utf8')) as { version: string };
  process.stdout.write(`tsbuild ${manifest.version}\n`);
  return true;
}
