import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import { buildConnector } from 'undici';
import { TsbuildError } from '../layers/errors.js';

/** Where common Linux distributions keep the system CA bundle. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

let systemCertificates: string[] | undefined;

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The file of extra CAs to trust. bin/tsbuild moves `NODE_EXTRA_CA_CERTS` into
 * `TSBUILD_EXTRA_CA_CERTS` for the node it starts, which would otherwise parse that file before
 * any command runs (about 40 ms of every start); a library caller's `NODE_EXTRA_CA_CERTS` is read as it is.
 */
function extraCaFile(env: NodeJS.ProcessEnv): string | undefined {
  return env.TSBUILD_EXTRA_CA_CERTS || env.NODE_EXTRA_CA_CERTS || undefined;
}

/** Node's bundled roots, the system bundle and the extra CAs (see `extraCaFile`), read once. */
function systemTrust(): string[] {
  if (systemCertificates === undefined) {
    const bundle = SYSTEM_BUNDLES.map(readOptional).find((text) => text !== undefined);
    const extraFile = extraCaFile(process.env);
    const extra = extraFile ? readOptional(extraFile) : undefined;
    systemCertificates = [...rootCertificates, ...(bundle !== undefined ? [bundle] : []), ...(extra !== undefined ? [extra] : [])];
  }
  return systemCertificates;
}

/** The PEM text of a registry CA file, or a clear error when it cannot be read or holds no certificate. */
function readCaFile(caFile: string): string {
  let pem: string;
  try {
    pem = readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new TsbuildError('REGISTRY_CA', `cannot read registry CA file ${caFile}: ${(error as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TsbuildError('REGISTRY_CA', `registry CA file ${caFile} holds no PEM certificate`);
  }
  return pem;
}

/**
 * Opens connections for an undici agent, for registries and for `ADD https://…`. HTTPS trusts the
 * system's CAs plus those in `caFile`; the TLS context, which parses every trusted CA (tens of
 * milliseconds), is made on the first https connection, so a plain-HTTP registry never pays for it. A bad `caFile` is refused here, at once.
 */
export function registryConnector(caFile: string | undefined, timeout: number): buildConnector.connector {
  const extraCa = caFile !== undefined ? readCaFile(caFile) : undefined;
  const plain = buildConnector({ timeout });
  let tls: buildConnector.connector | undefined;
  return (options, callback) => {
    if (options.protocol !== 'https:') return plain(options, callback);
    tls ??= buildConnector({ secureContext: createSecureContext({ ca: extraCa !== undefined ? [...systemTrust(), extraCa] : systemTrust() }), timeout });
    return tls(options, callback);
  };
}
