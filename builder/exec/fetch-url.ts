import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { DigestStream, parseDigest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { openWriteStream } from '../../layers/fs-util.js';

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/**
 * Downloads an ADD source URL into `dir`, named after the URL's last path segment, with the
 * server's Last-Modified time; with `checksum`, the content must have that digest.
 */
export async function downloadUrl(url: string, dir: string, checksum: string | undefined): Promise<string> {
  const name = path.posix.basename(new URL(url).pathname) || 'index.html';
  const file = path.join(dir, name);
  let response;
  try {
    response = await request(url, { maxRedirections: 10 });
  } catch (err) {
    throw new TsbuildError('ADD_URL', `failed to download ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new TsbuildError('ADD_URL', `failed to download ${url}: HTTP ${response.statusCode}`);
  }
  const hash = new DigestStream();
  await pipeline(response.body, hash, await openWriteStream(file, { mode: 0o600 }));
  if (checksum !== undefined && hash.digest !== parseDigest(checksum)) {
    throw new TsbuildError('ADD_CHECKSUM', `checksum mismatch for ${url}: expected ${checksum}, got ${hash.digest}`);
  }
  const modified = Date.parse(String(response.headers['last-modified'] ?? ''));
  if (!Number.isNaN(modified)) await utimes(file, modified / 1000, modified / 1000);
  return file;
}
