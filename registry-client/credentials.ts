import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { TsbuildError } from '../layers/errors.js';
import { isErrnoCode } from '../layers/fs-util.js';
import { isDockerHub } from './reference.js';

/** What a registry login holds: a username and password, or an identity (refresh) token. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token, exchanged at the token endpoint with a POST. */
  identityToken?: string;
}

/** The key Docker files Docker Hub's credentials under. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
  identitytoken?: unknown;
}

interface AuthConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
}

export interface CredentialLookupOptions {
  /** Environment to read DOCKER_CONFIG, REGISTRY_AUTH_FILE, HOME and PATH (for helpers) from; none when absent. */
  env?: NodeJS.ProcessEnv;
  /** How long a credential helper may run; default 30 s. */
  helperTimeoutMs?: number;
}

/** `https://host/v1/` or `host/path` → `host`, Docker Hub's names → `docker.io`. */
function keyHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
  return isDockerHub(host) ? 'docker.io' : host;
}

/** The entry of `map` for `registry`: an exact key first, then any key naming the same host. */
function lookup<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (map === undefined || typeof map !== 'object') return undefined;
  const exact = isDockerHub(registry) ? map[DOCKER_HUB_CONFIG_KEY] ?? map[registry] : map[registry];
  if (exact !== undefined) return exact;
  const want = keyHost(registry);
  for (const [key, value] of Object.entries(map)) {
    if (keyHost(key) === want) return value;
  }
  return undefined;
}

function fromAuthEntry(entry: AuthEntry, file: string, registry: string): RegistryCredentials | undefined {
  const creds: RegistryCredentials = {};
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new TsbuildError('CREDENTIALS', `${file}: the "auth" entry for ${registry} is not base64 of user:password`);
    creds.username = decoded.slice(0, colon);
    creds.password = decoded.slice(colon + 1);
  }
  if (typeof entry.username === 'string' && entry.username !== '') creds.username = entry.username;
  if (typeof entry.password === 'string' && entry.password !== '') creds.password = entry.password;
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') creds.identityToken = entry.identitytoken;
  return creds.password !== undefined || creds.identityToken !== undefined ? creds : undefined;
}

async function readConfig(file: string): Promise<AuthConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isErrnoCode(error, 'ENOENT') || isErrnoCode(error, 'ENOTDIR')) return undefined;
    throw new TsbuildError('CREDENTIALS', `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as AuthConfigFile;
  } catch (error) {
    // The parser's message may quote the file's contents, so only the position is kept.
    const where = /position \d+/.exec((error as Error).message)?.[0];
    throw new TsbuildError('CREDENTIALS', `${file} is not valid JSON${where !== undefined ? ` (${where})` : ''}`);
  }
}

/**
 * Runs `docker-credential-NAME get` with the server on stdin. Returns undefined when the helper
 * has no credentials for it.
 */
export async function runCredentialHelper(
  name: string,
  server: string,
  options: CredentialLookupOptions = {},
): Promise<RegistryCredentials | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new TsbuildError('CREDENTIALS', `invalid credential helper name ${JSON.stringify(name)}`);
  const program = `docker-credential-${name}`;
  const env = options.env ?? {};
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    // Our own timer: spawn's `timeout` option keeps the process alive when the program is missing.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.helperTimeoutMs ?? 30_000);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(
        isErrnoCode(error, 'ENOENT')
          ? new TsbuildError('CREDENTIALS', `credential helper ${program} not found in PATH (needed for ${server})`)
          : new TsbuildError('CREDENTIALS', `credential helper ${program} failed to start: ${error.message}`),
      );
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => undefined); // a helper that exits without reading stdin
    child.stdin.end(server);
  });
  if (code !== 0) {
    const said = `${stdout} ${stderr}`.replace(/\s+/g, ' ').trim();
    if (/credentials not found/i.test(said)) return undefined;
    const first = said.length > 200 ? `${said.slice(0, 197)}...` : said;
    throw new TsbuildError('CREDENTIALS', `credential helper ${program} failed for ${server} (exit ${code ?? 'by signal'})${first !== '' ? `: ${first}` : ''}`);
  }
  let reply: { Username?: unknown; Secret?: unknown };
  try {
    reply = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
  } catch {
    throw new TsbuildError('CREDENTIALS', `credential helper ${program} printed something that is not JSON for ${server}`);
  }
  if (typeof reply.Secret !== 'string' || reply.Secret === '') return undefined;
  const username = typeof reply.Username === 'string' ? reply.Username : '';
  // Docker's convention: the user name `<token>` marks the secret as an identity token.
  if (username === '<token>') return { identityToken: reply.Secret };
  return { username, password: reply.Secret };
}

/** Credentials from one config file: a per-registry helper, then the default store, then `auths`. */
async function fromConfigFile(file: string, registry: string, options: CredentialLookupOptions): Promise<RegistryCredentials | undefined> {
  const config = await readConfig(file);
  if (config === undefined) return undefined;
  const server = isDockerHub(registry) ? DOCKER_HUB_CONFIG_KEY : registry;
  const helper = lookup(config.credHelpers, registry);
  if (typeof helper === 'string' && helper !== '') return runCredentialHelper(helper, server, options);
  if (typeof config.credsStore === 'string' && config.credsStore !== '') {
    const stored = await runCredentialHelper(config.credsStore, server, options);
    if (stored !== undefined) return stored;
  }
  const entry = lookup(config.auths, registry);
  return entry !== undefined && typeof entry === 'object' ? fromAuthEntry(entry, file, registry) : undefined;
}

/** The config files consulted, in order: `$REGISTRY_AUTH_FILE`, then `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`). */
export function credentialFiles(env: NodeJS.ProcessEnv): string[] {
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE) files.push(env.REGISTRY_AUTH_FILE);
  const dockerDir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  files.push(join(dockerDir, 'config.json'));
  return files;
}

/**
 * The credentials for a registry host (`docker.io` and its aliases use Docker Hub's key), or
 * undefined for anonymous access. The first file that has any wins.
 */
export async function resolveCredentials(registry: string, options: CredentialLookupOptions = {}): Promise<RegistryCredentials | undefined> {
  for (const file of credentialFiles(options.env ?? {})) {
    const found = await fromConfigFile(file, registry, options);
    if (found !== undefined) return found;
  }
  return undefined;
}
