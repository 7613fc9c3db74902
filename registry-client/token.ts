import type { Dispatcher } from 'undici';
import type { RegistryCredentials } from './credentials.js';
import { errorFromNetwork, errorFromResponse, RegistryError } from './errors.js';
import { readText } from './http-body.js';

/** A bearer token and the time (ms since the epoch) after which it is no longer used. */
export interface BearerToken {
  token: string;
  expiresAt: number;
}

export interface TokenRequest {
  dispatcher: Dispatcher;
  realm: string;
  service: string | undefined;
  scopes: readonly string[];
  credentials: RegistryCredentials | undefined;
  userAgent: string;
}

/** Tokens without `expires_in` live 60 s (the distribution spec's default). */
const DEFAULT_LIFETIME_S = 60;
/** Tokens are renewed this long before they expire. */
const EXPIRY_MARGIN_MS = 10_000;
const CLIENT_ID = 'tsbuild';

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

interface TokenReply {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
  issued_at?: unknown;
}

/**
 * Gets a bearer token from the challenge's realm: an OAuth2 POST with the refresh token when the
 * credentials hold an identity token, else `GET realm?service=&scope=` (with Basic auth when there is
 * a password, anonymously otherwise).
 */
export async function fetchToken(request: TokenRequest): Promise<BearerToken> {
  const { credentials } = request;
  const url = new URL(request.realm);
  const secrets = [credentials?.password, credentials?.identityToken];
  const headers: Record<string, string> = { 'user-agent': request.userAgent, accept: 'application/json' };
  let method: 'GET' | 'POST' = 'GET';
  let body: string | undefined;
  if (credentials?.identityToken !== undefined) {
    method = 'POST';
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, client_id: CLIENT_ID });
    if (request.service !== undefined) form.set('service', request.service);
    if (request.scopes.length > 0) form.set('scope', request.scopes.join(' '));
    body = form.toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else {
    if (request.service !== undefined) url.searchParams.set('service', request.service);
    for (const scope of request.scopes) url.searchParams.append('scope', scope);
    if (credentials?.password !== undefined) {
      url.searchParams.set('account', credentials.username ?? '');
      headers.authorization = basicAuthorization(credentials.username ?? '', credentials.password);
    }
  }
  const issuedAt = Date.now();
  let response: Dispatcher.ResponseData;
  try {
    response = await request.dispatcher.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method, headers, body });
  } catch (error) {
    throw errorFromNetwork(method, url.toString(), error);
  }
  const text = await readText(response.body, 64 * 1024);
  if (response.statusCode !== 200) {
    const note = `token request for ${request.scopes.length > 0 ? request.scopes.join(' ') : 'no scope'}${credentials !== undefined ? '' : ', anonymous'}`;
    const error = errorFromResponse({ method, url: url.toString(), status: response.statusCode, bodyText: text, secrets, note });
    // A token server that refuses a login answers 401 or 403 and may not use the registry's codes.
    if ((response.statusCode === 401 || response.statusCode === 403) && error.code !== 'UNAUTHORIZED' && error.code !== 'DENIED') {
      throw new RegistryError({ codes: ['UNAUTHORIZED', ...error.errorCodes], status: response.statusCode, temporary: false, message: `unauthorized: ${error.message}` });
    }
    throw error;
  }
  let reply: TokenReply;
  try {
    reply = JSON.parse(text) as TokenReply;
  } catch {
    throw new RegistryError({ codes: ['PROTOCOL'], status: 200, temporary: false, message: `protocol: token server ${url.origin} did not answer with JSON` });
  }
  const token = typeof reply.token === 'string' && reply.token !== '' ? reply.token : reply.access_token;
  if (typeof token !== 'string' || token === '') {
    throw new RegistryError({ codes: ['PROTOCOL'], status: 200, temporary: false, message: `protocol: token server ${url.origin} sent no token` });
  }
  const lifetimeS = typeof reply.expires_in === 'number' && reply.expires_in > 0 ? reply.expires_in : DEFAULT_LIFETIME_S;
  const issued = typeof reply.issued_at === 'string' && !Number.isNaN(Date.parse(reply.issued_at)) ? Math.min(Date.parse(reply.issued_at), issuedAt) : issuedAt;
  return { token, expiresAt: issued + lifetimeS * 1000 - Math.min(EXPIRY_MARGIN_MS, (lifetimeS * 1000) / 2) };
}
