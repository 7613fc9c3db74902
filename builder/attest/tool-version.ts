import { readFileSync } from 'node:fs';

let version: string | undefined;

/** tsbuild's own version, from the package.json beside `dist/` (read once). */
export function toolVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
