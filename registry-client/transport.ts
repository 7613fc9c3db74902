import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type Dispatcher } from 'undici';
import { parseWwwAuthenticate } from './auth-challenge.js';
import type { RegistryCredentials } from './credentials.js';
import { errorFromNetwork, errorFromResponse, RegistryError } from './errors.js';
import { firstHeader, readText } from './http-body.js';
import { registryBaseUrl } from './reference.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter, type RetryPolicy } from './retry.js';
import { registryConnector } from './tls-trust.js';
import { basicAuthorization, type BearerToken, fetchToken } from './token.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RegistryRequest {
  method: HttpMethod;
  /** A path with query on the registry (`/v2/…`), or an absolute URL such as an upload `Location`. */
  path: string;
  headers?: Record<string, string>;
  /** Opens the body afresh for every try; a stream must not be shared between calls. */
  body?: () => Readable | Buffer;
  /** POST and PATCH are only retried when the caller says the request may be sent again. */
  resendable?: boolean;
  /** Token scopes, e.g. `repository:team/app:pull,push`. */
  scope?: string | readonly string[];
  /** Statuses handed back to the caller; any other status becomes a RegistryError. */
  expectStatus: readonly number[];
}

export interface RegistryResponse {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  /** The body; the caller must consume or dump it. */
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: string;
}

export interface RetryNotice {
  /** The try that failed (1-based). */
  attempt: number;
  delayMs: number;
  error: RegistryError;
}

export interface TransportOptions {
  credentials?: RegistryCredentials;
  /** true: plain HTTP; false: HTTPS even for loopback hosts; undefined: plain HTTP only for loopback. */
  insecure?: boolean;
  /** A PEM file of CA certificates trusted in addition to the system's. */
  caFile?: string;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Connections per origin; default 6. */
  connections?: number;
  /** Told about each retry before its wait, for progress output. */
  onRetry?: (notice: RetryNotice) => void;
}

type Challenge = { scheme: 'bearer'; realm: string; service: string | undefined } | { scheme: 'basic' };

const IDEMPOTENT = new Set<HttpMethod>(['GET', 'HEAD', 'PUT', 'DELETE']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
const ERROR_BODY_LIMIT = 64 * 1024;

function scopeList(scope: string | readonly string[] | undefined): string[] {
  const list = scope === undefined ? [] : typeof scope === 'string' ? [scope] : [...scope];
  return [...new Set(list.flatMap((s) => s.split(' ')).filter((s) => s !== ''))].sort();
}

/**
 * Sends requests to one registry host: authenticates on demand (Bearer tokens per scope, cached until
 * they expire, or Basic), follows redirects of GET/HEAD, and retries temporary failures with
 * exponential backoff. Credentials never appear in its errors.
 */
export class RegistryTransport {
  /** The registry host as named in references, e.g. `docker.io`, `localhost:5000`. */
  readonly registry: string;
  /** Its API base URL, e.g. `https://registry-1.docker.io`. */
  readonly baseUrl: string;
  readonly #origin: string;
  readonly #agent: Agent;
  readonly #credentials: RegistryCredentials | undefined;
  readonly #retry: RetryPolicy;
  readonly #userAgent: string;
  readonly #onRetry: ((notice: RetryNotice) => void) | undefined;
  #challenge: Challenge | undefined;
  #discovery: Promise<void> | undefined;
  readonly #tokens = new Map<string, Promise<BearerToken>>();

  constructor(registry: string, options: TransportOptions = {}) {
    this.registry = registry;
    this.baseUrl = registryBaseUrl(registry, options.insecure);
    this.#origin = new URL(this.baseUrl).origin;
    this.#credentials = options.credentials;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#userAgent = options.userAgent ?? 'tsbuild';
    this.#onRetry = options.onRetry;
    this.#agent = new Agent({ connections: options.connections ?? 6, connect: registryConnector(options.caFile, 30_000) });
  }

  /** `GET /v2/` with authentication: resolves when the registry accepts us. */
  async ping(): Promise<void> {
    const response = await this.request({ method: 'GET', path: '/v2/', expectStatus: [200] });
    await response.body.dump();
  }

  /** Closes the idle connections; in-flight requests finish first. */
  async close(): Promise<void> {
    await this.#agent.close();
  }

  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const scopes = scopeList(req.scope);
    // Learn the auth scheme before sending a body, so a large upload is not sent only to get a 401.
    if (req.body !== undefined && this.#challenge === undefined) await this.#discover();
    const retriable = IDEMPOTENT.has(req.method) || req.resendable === true;
    const started = Date.now();
    let failures = 0;
    let reauthenticated = false;
    let challengeScopes: string[] = [];
    for (;;) {
      const allScopes = scopeList([...scopes, ...challengeScopes]);
      const outcome = await this.#attempt(req, allScopes);
      if ('response' in outcome) {
        const sent = outcome.response;
        if (sent.status === 401 && !reauthenticated && !req.expectStatus.includes(401)) {
          const learned = this.#learn(sent.headers, allScopes);
          if (learned !== undefined) {
            await sent.body.dump();
            reauthenticated = true;
            challengeScopes = learned;
            continue;
          }
        }
        if (req.expectStatus.includes(sent.status)) return sent;
      }
      const { error, retryAfterMs } = 'response' in outcome ? await this.#failure(req, outcome.response) : outcome;
      failures++;
      if (!error.temporary || !retriable) throw error;
      if (failures >= this.#retry.attempts) throw this.#gaveUp(error, failures, started, 'after');
      const delayMs = retryAfterMs ?? backoffDelay(this.#retry, failures);
      if (Date.now() - started + delayMs > this.#retry.budgetMs) throw this.#gaveUp(error, failures, started, 'budget');
      this.#onRetry?.({ attempt: failures, delayMs, error });
      await sleep(delayMs);
    }
  }

  /** One try with authorization; a failure to get a response (or a token) comes back as a RegistryError. */
  async #attempt(req: RegistryRequest, scopes: readonly string[]): Promise<{ response: RegistryResponse } | { error: RegistryError; retryAfterMs?: undefined }> {
    try {
      const authorization = await this.#authorization(scopes);
      return { response: await this.#send(req, authorization) };
    } catch (caught) {
      return { error: caught instanceof RegistryError ? caught : errorFromNetwork(req.method, this.#url(req.path).toString(), caught) };
    }
  }

  /** The error for an unexpected response (its body read for the registry's message), and any Retry-After. */
  async #failure(req: RegistryRequest, sent: RegistryResponse): Promise<{ error: RegistryError; retryAfterMs: number | undefined }> {
    const bodyText = req.method === 'HEAD' ? '' : await readText(sent.body, ERROR_BODY_LIMIT).catch(() => '');
    if (req.method === 'HEAD') await sent.body.dump();
    const note = sent.status === 401 || sent.status === 403 ? this.#whoNote(sent.status) : undefined;
    const error = errorFromResponse({ method: req.method, url: sent.url, status: sent.status, bodyText, secrets: this.#secrets(), ...(note !== undefined && { note }) });
    const retryAfterMs = sent.status === 429 || sent.status === 503 ? parseRetryAfter(firstHeader(sent.headers, 'retry-after')) : undefined;
    return { error, retryAfterMs };
  }

  #url(path: string): URL {
    return /^https?:\/\//i.test(path) ? new URL(path) : new URL(path, this.baseUrl);
  }

  /** One try: sends the request, following redirects of GET and HEAD; authorization goes to the registry's origin only. */
  async #send(req: RegistryRequest, authorization: string | undefined): Promise<RegistryResponse> {
    let url = this.#url(req.path);
    for (let redirects = 0; ; redirects++) {
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...req.headers };
      if (authorization !== undefined && url.origin === this.#origin) headers.authorization = authorization;
      const response = await this.#agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        body: req.body?.() ?? null,
      });
      const location = firstHeader(response.headers, 'location');
      const follow = (req.method === 'GET' || req.method === 'HEAD') && REDIRECTS.has(response.statusCode) && !req.expectStatus.includes(response.statusCode);
      if (!follow || location === undefined || redirects >= MAX_REDIRECTS) {
        return { status: response.statusCode, headers: response.headers, body: response.body, url: url.toString() };
      }
      await response.body.dump();
      url = new URL(location, url);
    }
  }

  /** Sends `GET /v2/` unauthenticated once, to learn the auth scheme from its challenge. */
  async #discover(): Promise<void> {
    this.#discovery ??= (async () => {
      const response = await this.#send({ method: 'GET', path: '/v2/', expectStatus: [] }, undefined).catch((caught: unknown) => {
        throw errorFromNetwork('GET', this.#url('/v2/').toString(), caught);
      });
      await response.body.dump();
      if (response.status === 401) this.#learn(response.headers, []);
    })();
    try {
      await this.#discovery;
    } catch (error) {
      this.#discovery = undefined;
      throw error;
    }
  }

  /**
   * Records the scheme of a 401's challenge and drops the token that was refused. Returns the scopes
   * the challenge asks for (possibly none), or undefined when there is no way to authenticate.
   */
  #learn(headers: Dispatcher.ResponseData['headers'], sentScopes: readonly string[]): string[] | undefined {
    const challenges = parseWwwAuthenticate(headers['www-authenticate']);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm !== undefined);
    if (bearer !== undefined) {
      this.#challenge = { scheme: 'bearer', realm: bearer.params.realm!, service: bearer.params.service };
      this.#tokens.delete(sentScopes.join(' '));
      return scopeList(bearer.params.scope);
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.#credentials?.password !== undefined) {
      this.#challenge = { scheme: 'basic' };
      return [];
    }
    return undefined;
  }

  async #authorization(scopes: readonly string[]): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      const creds = this.#credentials;
      return creds?.password !== undefined ? basicAuthorization(creds.username ?? '', creds.password) : undefined;
    }
    const key = scopes.join(' ');
    const cached = this.#tokens.get(key);
    if (cached !== undefined) {
      const token = await cached.catch(() => undefined);
      if (token !== undefined && token.expiresAt > Date.now()) return `Bearer ${token.token}`;
      if (this.#tokens.get(key) === cached) this.#tokens.delete(key);
    }
    const fetching = fetchToken({
      dispatcher: this.#agent,
      realm: challenge.realm,
      service: challenge.service,
      scopes,
      credentials: this.#credentials,
      userAgent: this.#userAgent,
    });
    this.#tokens.set(key, fetching);
    try {
      return `Bearer ${(await fetching).token}`;
    } catch (error) {
      if (this.#tokens.get(key) === fetching) this.#tokens.delete(key);
      throw error;
    }
  }

  #secrets(): (string | undefined)[] {
    return [this.#credentials?.password, this.#credentials?.identityToken];
  }

  #whoNote(status: number): string {
    const creds = this.#credentials;
    if (creds === undefined) return 'anonymously';
    const who = creds.username !== undefined && creds.username !== '' ? `user ${creds.username}` : 'an identity token';
    return status === 401 && this.#challenge?.scheme === 'basic' ? `the credentials of ${who} were refused` : `as ${who}`;
  }

  #gaveUp(error: RegistryError, tries: number, started: number, why: 'after' | 'budget'): RegistryError {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const count = `${tries} ${tries === 1 ? 'try' : 'tries'}`;
    const suffix = why === 'after' ? `gave up after ${count} in ${seconds}s` : `gave up after ${count}: the next wait would exceed the ${this.#retry.budgetMs / 1000}s retry budget`;
    return new RegistryError(
      { codes: error.errorCodes, ...(error.status !== undefined && { status: error.status }), temporary: true, message: `${error.message}; ${suffix}` },
      { cause: error },
    );
  }
}
