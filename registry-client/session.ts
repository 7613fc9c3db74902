import { resolveCredentials, type CredentialLookupOptions } from './credentials.js';
import { RegistryTransport, type TransportOptions } from './transport.js';

/** How pull and push reach registries. */
export interface RegistryAccess {
  /**
   * Supplies the transport for a registry host; the caller owns it and closes it. Without it, one
   * transport per registry is made from `transportOptions` (with the credentials found in the
   * Docker config files unless `transportOptions.credentials` is set) and closed at the end.
   */
  transport?: (registry: string) => RegistryTransport;
  transportOptions?: TransportOptions;
  /** Where credentials are looked up (environment, helper timeout). */
  credentialLookup?: CredentialLookupOptions;
}

/** Runs `action` with a transport for `registry`, closing it afterwards when it was made here. */
export async function withRegistry<T>(registry: string, access: RegistryAccess, action: (transport: RegistryTransport) => Promise<T>): Promise<T> {
  if (access.transport !== undefined) return action(access.transport(registry));
  const options = access.transportOptions ?? {};
  const credentials = options.credentials ?? (await resolveCredentials(registry, access.credentialLookup));
  const transport = new RegistryTransport(registry, { ...options, ...(credentials !== undefined && { credentials }) });
  try {
    return await action(transport);
  } finally {
    await transport.close();
  }
}
