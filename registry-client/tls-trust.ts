import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
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

/** Node's bundled roots, the system bundle and `NODE_EXTRA_CA_CERTS`, read once. */
function systemTrust(): string[] {
  if (systemCertificates === undefined) {
    const bundle = SYSTEM_BUNDLES.map(readOptional).find((text) => text !== undefined);
    const extraFile = process.env.NODE_EXTRA_CA_CERTS;
    const extra = extraFile ? readOptional(extraFile) : undefined;
    systemCertificates = [...rootCertificates, ...(bundle !== undefined ? [bundle] : []), ...(extra !== undefined ? [extra] : [])];
  }
  return systemCertificates;
}

/** The CA certificates (PEM texts) HTTPS connections trust: the system's plus those in `caFile`. */
export function trustedCertificates(caFile?: string): string[] {
  if (caFile === undefined) return systemTrust();
  let extra: string;
  try {
    extra = readFileSync(caFile, 'utf8');
  } catch (error) {
    throw new TsbuildError('REGISTRY_CA', `cannot read registry CA file ${caFile}: ${(error as Error).message}`);
  }
  if (!extra.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TsbuildError('REGISTRY_CA', `registry CA file ${caFile} holds no PEM certificate`);
  }
  return [...systemTrust(), extra];
}
