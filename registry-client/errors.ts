import { isErrorCode, TsbuildError } from '../layers/errors.js';

/**
 * A failure talking to a registry. `code` is the registry's first error code (UNAUTHORIZED,
 * MANIFEST_UNKNOWN, …) or one derived from the HTTP status or the network failure (UNREACHABLE,
 * CONNECTION, TLS, PROTOCOL); `temporary` says whether trying again later may help.
 */
export class RegistryError extends TsbuildError {
  readonly status: number | undefined;
  /** Every error code the registry sent (or the one derived), first one = `code`. */
  readonly errorCodes: readonly string[];
  readonly temporary: boolean;

  constructor(
    init: { codes: readonly string[]; status?: number; temporary: boolean; message: string },
    options?: { cause?: unknown },
  ) {
    const codes = init.codes.length > 0 ? init.codes : ['UNKNOWN'];
    // A registry may send codes of its own: `errorCodes` keeps them, `code` stays in the closed union.
    super(isErrorCode(codes[0]!) ? codes[0]! : 'UNKNOWN', init.message, options);
    this.name = 'RegistryError';
    this.status = init.status;
    this.errorCodes = codes;
    this.temporary = init.temporary;
  }
}

/** `MANIFEST_UNKNOWN` → `manifest unknown`: the label that starts an error line. */
export function errorLabel(code: string): string {
  return code.toLowerCase().replace(/_/g, ' ');
}

/** Statuses after which the same request may succeed later. */
export function isTemporaryStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

function codeForStatus(status: number): string {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'DENIED';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'UNSUPPORTED';
    case 429:
      return 'TOOMANYREQUESTS';
    default:
      return status >= 500 ? 'SERVER_ERROR' : 'UNEXPECTED_STATUS';
  }
}

const SECRET_QUERY_KEY = /sig|token|cred|pass|secret|key|state|auth|code/i;

/**
 * A URL fit for messages: user info removed, and values of query parameters that may carry
 * secrets (signatures, tokens, upload state) replaced by `***`.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
  parsed.username = '';
  parsed.password = '';
  for (const key of [...new Set(parsed.searchParams.keys())]) {
    if (SECRET_QUERY_KEY.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString().replace(/%2A%2A%2A/g, '***');
}

/** Replaces every occurrence of each secret (≥ 4 characters) in `text` by `***`. */
export function redactSecrets(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}

interface RegistryErrorBody {
  errors?: { code?: unknown; message?: unknown; detail?: unknown }[];
  details?: unknown;
  error?: unknown;
  error_description?: unknown;
}

/** One line, at most 300 characters. */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
}

/** The codes and the human message in a registry (or token server) error body, when it is JSON. */
export function parseErrorBody(text: string): { codes: string[]; message: string | undefined } {
  let body: RegistryErrorBody;
  try {
    body = JSON.parse(text) as RegistryErrorBody;
  } catch {
    return { codes: [], message: undefined };
  }
  if (body === null || typeof body !== 'object') return { codes: [], message: undefined };
  const codes: string[] = [];
  const messages: string[] = [];
  for (const entry of Array.isArray(body.errors) ? body.errors : []) {
    if (typeof entry?.code === 'string' && /^[A-Z_]+$/.test(entry.code)) codes.push(entry.code);
    if (typeof entry?.message === 'string' && entry.message !== '') messages.push(entry.message);
  }
  for (const extra of [body.details, body.error_description, body.error]) {
    if (typeof extra === 'string' && extra !== '') messages.push(extra);
  }
  return { codes, message: messages.length > 0 ? messages.join('; ') : undefined };
}

/** `name:tag` or `name@digest` for manifest and blob URLs; undefined for others. */
function describeTarget(url: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  const match = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(path);
  if (match === null) return undefined;
  const [, name, kind, target] = match;
  return kind === 'manifests' && !target!.includes(':') ? `${name}:${target}` : `${name}@${target}`;
}

/**
 * The error for an unexpected HTTP response: `"<label>: <registry message> (<METHOD> <url>: HTTP <status>)"`,
 * with the URL redacted and the given secrets removed from anything the server said.
 */
export function errorFromResponse(args: {
  method: string;
  url: string;
  status: number;
  bodyText: string;
  secrets: readonly (string | undefined)[];
  note?: string;
}): RegistryError {
  const parsed = parseErrorBody(args.bodyText);
  const codes = parsed.codes.length > 0 ? parsed.codes : [codeForStatus(args.status)];
  const label = errorLabel(codes[0]!);
  const said = parsed.message !== undefined && parsed.message.toLowerCase() !== label ? oneLine(parsed.message) : undefined;
  const what = describeTarget(args.url);
  const text = [said, what].filter((part) => part !== undefined).join(': ');
  const where = `(${args.method} ${redactUrl(args.url)}: HTTP ${args.status}${args.note !== undefined ? `, ${args.note}` : ''})`;
  return new RegistryError({
    codes,
    status: args.status,
    temporary: isTemporaryStatus(args.status),
    message: redactSecrets(`${label}${text !== '' ? `: ${text}` : ''} ${where}`, args.secrets),
  });
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const TLS_CODE = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/;

/** The first system or undici error code along the error's cause chain. */
function errnoCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/**
 * The error for a request that got no HTTP response. Resets and timeouts are temporary; a refused
 * connection, an unknown host and TLS failures are not retried.
 */
export function errorFromNetwork(method: string, url: string, error: unknown): RegistryError {
  const code = errnoCode(error) ?? 'UNKNOWN';
  const target = redactUrl(url);
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return target;
    }
  })();
  if (UNREACHABLE_CODES.has(code)) {
    const why = code === 'ECONNREFUSED' ? 'connection refused' : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'unknown host' : 'no route to host';
    return new RegistryError(
      { codes: ['UNREACHABLE'], temporary: false, message: `unreachable: cannot connect to registry ${host}: ${why} (${method} ${target})` },
      { cause: error },
    );
  }
  if (TLS_CODE.test(code) || code === 'EPROTO') {
    const detail = error instanceof Error ? oneLine(error.message) : code;
    return new RegistryError(
      { codes: ['TLS'], temporary: false, message: `tls: secure connection to ${host} failed: ${detail} [${code}] (trust its CA with a CA file, or mark the registry insecure)` },
      { cause: error },
    );
  }
  if (RESET_CODES.has(code)) {
    const why = code.includes('TIMEOUT') || code === 'ETIMEDOUT' ? 'timed out' : 'connection closed or reset';
    return new RegistryError(
      { codes: ['CONNECTION'], temporary: true, message: `connection: ${why} by ${host} [${code}] (${method} ${target})` },
      { cause: error },
    );
  }
  const detail = error instanceof Error ? oneLine(error.message) : String(error);
  return new RegistryError({ codes: ['CONNECTION'], temporary: false, message: `connection: ${method} ${target} failed: ${detail}` }, { cause: error });
}
