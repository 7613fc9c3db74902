import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** One resource access as the registry's token format carries it. */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** What the token server saw of one token request. */
export interface TokenRequestRecord {
  method: string;
  /** `basic`, `refresh_token`, `password` or `anonymous`. */
  via: string;
  subject: string | undefined;
  scopes: string[];
  granted: TokenAccess[];
  status: number;
}

export interface TokenServerOptions {
  issuer: string;
  service: string;
  /** username → password */
  users: Record<string, string>;
  /** refresh (identity) token → username */
  refreshTokens?: Record<string, string>;
  /** Token lifetime in seconds; default 300. */
  lifetimeS?: number;
  /** The actions granted; default: users get what they ask for, anonymous callers only `pull`. */
  grant?: (subject: string | undefined, requested: TokenAccess) => string[];
}

export interface TokenServer {
  /** The realm URL to configure in the registry, `http://127.0.0.1:PORT/token`. */
  realm: string;
  /** The PEM certificate whose key signs the tokens (the registry's `rootcertbundle`). */
  certFile: string;
  readonly requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The registry's key id for a public key: base32 of the first 240 bits of SHA-256(SPKI DER), in groups of 4. */
export function registryKeyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const encoded = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return encoded.match(/.{4}/g)!.join(':');
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `type:name:action,action`; names may not contain `:` here, which suffices for tests. */
function parseScope(scope: string): TokenAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first === -1 || first === last) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter((a) => a !== '') };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function defaultGrant(subject: string | undefined, requested: TokenAccess): string[] {
  return subject !== undefined ? requested.actions : requested.actions.filter((a) => a === 'pull');
}

/**
 * Starts a token server on 127.0.0.1 that checks Basic credentials (GET) or OAuth2 forms (POST with
 * `password` or `refresh_token` grants) and issues ES256 JWTs the registry verifies with `certFile`.
 * `dir` receives the key and certificate; the caller removes it.
 */
export async function startTokenServer(dir: string, options: TokenServerOptions): Promise<TokenServer> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, 'token-signing.key');
  const certFile = join(dir, 'token-signing.crt');
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  // node:crypto cannot create certificates; openssl wraps the key in a self-signed one.
  execFileSync('openssl', ['req', '-new', '-x509', '-key', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${options.issuer}`], { stdio: 'pipe' });
  const keyId = registryKeyId(createPublicKey(privateKey));
  const lifetimeS = options.lifetimeS ?? 300;
  const grant = options.grant ?? defaultGrant;
  const requests: TokenRequestRecord[] = [];

  const issue = (subject: string | undefined, scopes: string[]): { token: string; granted: TokenAccess[] } => {
    const granted: TokenAccess[] = [];
    for (const scope of scopes) {
      const requested = parseScope(scope);
      if (requested === undefined) continue;
      const actions = grant(subject, requested);
      if (actions.length > 0) granted.push({ ...requested, actions });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'ES256', kid: keyId };
    const claims = {
      iss: options.issuer,
      sub: subject ?? '',
      aud: options.service,
      exp: now + lifetimeS,
      nbf: now - 5,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access: granted,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${base64url(signature)}`, granted };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const refuse = (record: Omit<TokenRequestRecord, 'status' | 'granted'>): void => {
      requests.push({ ...record, granted: [], status: 401 });
      reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] });
    };
    if (url.pathname !== '/token' || (req.method !== 'GET' && req.method !== 'POST')) {
      reply(404, { errors: [{ code: 'NOT_FOUND', message: 'no such endpoint' }] });
      return;
    }
    let params: URLSearchParams;
    let via = 'anonymous';
    let subject: string | undefined;
    if (req.method === 'POST') {
      params = new URLSearchParams(await readBody(req));
      const grantType = params.get('grant_type') ?? '';
      via = grantType;
      const scopes = (params.get('scope') ?? '').split(' ').filter((s) => s !== '');
      if (grantType === 'refresh_token') {
        subject = options.refreshTokens?.[params.get('refresh_token') ?? ''];
        if (subject === undefined) return refuse({ method: 'POST', via, subject: undefined, scopes });
      } else if (grantType === 'password') {
        const username = params.get('username') ?? '';
        if (options.users[username] === undefined || options.users[username] !== params.get('password')) return refuse({ method: 'POST', via, subject: username, scopes });
        subject = username;
      } else {
        reply(400, { error: 'unsupported_grant_type' });
        return;
      }
    } else {
      params = url.searchParams;
      const authorization = req.headers.authorization;
      if (authorization !== undefined) {
        via = 'basic';
        const decoded = authorization.startsWith('Basic ') ? Buffer.from(authorization.slice(6), 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        const username = colon === -1 ? '' : decoded.slice(0, colon);
        const scopes = params.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
        if (colon === -1 || options.users[username] === undefined || options.users[username] !== decoded.slice(colon + 1)) {
          return refuse({ method: 'GET', via, subject: username, scopes });
        }
        subject = username;
      }
    }
    if (params.get('service') !== options.service) {
      reply(400, { errors: [{ code: 'UNSUPPORTED', message: `unknown service ${params.get('service') ?? ''}` }] });
      return;
    }
    const scopes = (req.method === 'POST' ? [params.get('scope') ?? ''] : params.getAll('scope')).flatMap((s) => s.split(' ')).filter((s) => s !== '');
    const { token, granted } = issue(subject, scopes);
    requests.push({ method: req.method, via, subject, scopes, granted, status: 200 });
    const body: Record<string, unknown> = { token, expires_in: lifetimeS, issued_at: new Date().toISOString() };
    if (req.method === 'POST') body.access_token = token;
    reply(200, body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certFile,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
