import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './token-server.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export type RegistryAuth = 'plain' | 'htpasswd' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  /** username → password, for htpasswd and token auth; default `{ alice: 'wonderland-secret-1' }`. */
  users?: Record<string, string>;
  /** Token auth only: extra settings of the token server. */
  token?: Partial<Omit<TokenServerOptions, 'users'>>;
  /** Serve HTTPS with a certificate for 127.0.0.1 issued by a fresh CA (`caFile`). */
  tls?: boolean;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry host to give a transport. */
  host: string;
  port: number;
  auth: RegistryAuth;
  users: Record<string, string>;
  /** The token server, for token auth. */
  tokenServer?: TokenServer;
  /** The CA certificate that issued the registry's certificate, with `tls`. */
  caFile?: string;
  /** The temp dir holding config, storage and keys; removed by `stop`. */
  dir: string;
  stop(): Promise<void>;
}

export const REGISTRY_SERVICE = 'tsbuild-test-registry';
export const TOKEN_ISSUER = 'tsbuild-test-issuer';

/** A port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A CA and a server certificate for IP 127.0.0.1 signed by it, made with openssl. */
function makeTlsFiles(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const run = (args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe', cwd: dir });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tsbuild test CA']);
  run(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  return { caFile: join(dir, 'ca.crt'), certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key') };
}

/** `/v2/` answers (any status) over the given scheme. */
function answers(port: number, tls: boolean): Promise<boolean> {
  if (tls) {
    // The TLS handshake would need the CA; a plain TCP connect shows the listener is up.
    return new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  }
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/v2/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}

/** Environment for the registry: without REGISTRY_* variables, which would override its config file. */
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts Debian's docker-registry on 127.0.0.1 (a free port, storage in a fresh temp dir) with no
 * auth, htpasswd Basic auth or token auth, and waits until it answers.
 */
export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BINARY)) throw new Error(`${REGISTRY_BINARY} is missing: install the Debian package docker-registry`);
  const auth = options.auth ?? 'plain';
  const users = options.users ?? { alice: 'wonderland-secret-1' };
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-registry-'));
  let tokenServer: TokenServer | undefined;
  let child: ChildProcess | undefined;
  try {
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      '  addr: 127.0.0.1:PORT',
      `  secret: ${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`,
    ];
    let caFile: string | undefined;
    if (options.tls === true) {
      const files = makeTlsFiles(dir);
      caFile = files.caFile;
      lines.push('  tls:', `    certificate: ${files.certFile}`, `    key: ${files.keyFile}`);
    }
    if (auth === 'htpasswd') {
      const entries = Object.entries(users).map(([user, password]) =>
        execFileSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' }).trim(),
      );
      writeFileSync(join(dir, 'htpasswd'), `${entries.join('\n')}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: tsbuild-test', `    path: ${join(dir, 'htpasswd')}`);
    } else if (auth === 'token') {
      tokenServer = await startTokenServer(dir, { issuer: TOKEN_ISSUER, service: REGISTRY_SERVICE, ...options.token, users });
      lines.push(
        'auth:',
        '  token:',
        `    realm: ${tokenServer.realm}`,
        `    service: ${REGISTRY_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    rootcertbundle: ${tokenServer.certFile}`,
      );
    }
    // A port can be taken between choosing and binding it: try a few.
    for (let tries = 1; ; tries++) {
      const port = await freePort();
      const configFile = join(dir, 'config.yml');
      writeFileSync(configFile, `${lines.join('\n').replace('127.0.0.1:PORT', `127.0.0.1:${port}`)}\n`);
      const started = spawn(REGISTRY_BINARY, ['serve', configFile], { env: registryEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      child = started;
      let stderr = '';
      started.stderr!.on('data', (chunk: Buffer) => {
        stderr = (stderr + chunk.toString('utf8')).slice(-4000);
      });
      const deadline = Date.now() + 15_000;
      let up = false;
      while (!up && Date.now() < deadline && started.exitCode === null) {
        up = await answers(port, options.tls === true);
        if (!up) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (up) {
        const running = started;
        const server = tokenServer;
        return {
          host: `127.0.0.1:${port}`,
          port,
          auth,
          users,
          ...(server !== undefined && { tokenServer: server }),
          ...(caFile !== undefined && { caFile }),
          dir,
          stop: async () => {
            await stopChild(running);
            await server?.stop();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await stopChild(started);
      if (!/address already in use/.test(stderr) || tries >= 3) {
        throw new Error(`docker-registry did not start: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
      }
    }
  } catch (error) {
    if (child !== undefined) await stopChild(child);
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
