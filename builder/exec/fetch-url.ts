import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DigestStream, parseDigest } from '../../layers/digest.js';
import { TsbuildError } from '../../layers/errors.js';
import { openWriteStream } from '../../layers/fs-util.js';
import { firstHeader } from '../../registry-client/http-body.js';

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** How long an ADD download may wait, in milliseconds. */
export interface DownloadLimits {
  /** For the response headers. */
  readonly headersMs: number;
  /** For each further piece of the body. */
  readonly idleMs: number;
  /** For the whole download. */
  readonly totalMs: number;
}

const defaultLimits: DownloadLimits = { headersMs: 30_000, idleMs: 60_000, totalMs: 3_600_000 };

/**
 * The limits, with `TSBUILD_ADD_URL_TIMEOUT` (seconds) replacing the one-hour limit for a whole
 * download; no wait is ever longer than it.
 */
export function downloadLimits(env: NodeJS.ProcessEnv): DownloadLimits {
  const value = env.TSBUILD_ADD_URL_TIMEOUT;
  if (value === undefined || value === '') return defaultLimits;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new TsbuildError('BAD_ENV', `invalid TSBUILD_ADD_URL_TIMEOUT "${value}": expected a positive number of seconds`);
  }
  const totalMs = seconds * 1000;
  return { headersMs: Math.min(defaultLimits.headersMs, totalMs), idleMs: Math.min(defaultLimits.idleMs, totalMs), totalMs };
}

/** A URL as messages show it: without user, password or query, which may hold credentials. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    const query = parsed.search !== '' ? '?…' : '';
    parsed.search = '';
    parsed.hash = '';
    return `${parsed.href}${query}`;
  } catch {
    return url.replace(/[?#].*$/s, '').replace(/\/\/[^/@]*@/, '//');
  }
}

/**
 * Downloads an ADD source URL into `dir`, named after the URL's last path segment, with the
 * server's Last-Modified time; with `checksum`, the content must have that digest.
 */
export async function downloadUrl(url: string, dir: string, checksum: string | undefined, limits: DownloadLimits): Promise<string> {
  const shown = redactUrl(url);
  const fail = (reason: string, cause?: unknown): TsbuildError => new TsbuildError('ADD_URL', `failed to download ${shown}: ${reason}`, { cause });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw fail('invalid URL', err);
  }
  const file = path.join(dir, path.posix.basename(parsed.pathname) || 'index.html');
  // The file is open before the request: from the moment the response arrives its body must have
  // a reader, or a connection the server breaks meanwhile is an error nobody handles.
  const out = await openWriteStream(file, { mode: 0o600 });
  const signal = AbortSignal.timeout(limits.totalMs);
  const hash = new DigestStream();
  let lastModified: string | undefined;
  let responded = false;
  try {
    const { request, downloads } = await downloadAgent();
    const response = await request(parsed, { dispatcher: downloads, maxRedirections: 10, headersTimeout: limits.headersMs, bodyTimeout: limits.idleMs, signal });
    responded = true;
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw fail(`HTTP ${response.statusCode}`);
    }
    lastModified = firstHeader(response.headers, 'last-modified');
    await pipeline(response.body, hash, out);
  } catch (err) {
    out.destroy();
    if (err instanceof TsbuildError) throw err;
    const timedOut = signal.aborted && (responded ? `not finished after ${limits.totalMs / 1000} s` : `no response after ${limits.totalMs / 1000} s`);
    throw fail(timedOut || transferFailure(err, limits), err);
  }
  if (checksum !== undefined && hash.digest !== parseDigest(checksum)) {
    throw new TsbuildError('ADD_CHECKSUM', `checksum mismatch for ${shown}: expected ${checksum}, got ${hash.digest}`);
  }
  const modified = Date.parse(lastModified ?? '');
  if (!Number.isNaN(modified)) await utimes(file, modified / 1000, modified / 1000);
  return file;
}

let agent: Promise<{ request: typeof import('undici').request; downloads: import('undici').Agent }> | undefined;

/**
 * undici and the agent for downloads, loaded on the first download: planning and most builds never
 * need them. HTTPS trusts what registry connections trust: the system's CAs, node's, and the extra
 * CAs bin/tsbuild hands on from `NODE_EXTRA_CA_CERTS` (which node itself then never reads).
 */
function downloadAgent(): NonNullable<typeof agent> {
  agent ??= Promise.all([import('undici'), import('../../registry-client/tls-trust.js')]).then(([{ Agent, request }, { registryConnector }]) => ({
    request,
    downloads: new Agent({ connect: registryConnector(undefined, 30_000) }),
  }));
  return agent;
}

/** Why a request or its body failed, in words. */
function transferFailure(err: unknown, limits: DownloadLimits): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
      return `no response after ${limits.headersMs / 1000} s`;
    case 'UND_ERR_BODY_TIMEOUT':
      return `no data for ${limits.idleMs / 1000} s`;
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
      return 'the server closed the connection before the download finished';
    case 'UND_ERR_MAX_REDIRECTIONS':
      return 'too many redirects';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
      return 'host not found';
    default: {
      const message = err instanceof Error ? err.message : String(err);
      return message.split('\n')[0]!;
    }
  }
}
