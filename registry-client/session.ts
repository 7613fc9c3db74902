import { resolveCredentials, type CredentialLookupOptions } from './credentials.js';
import type { RegistryTransport, TransportOptions } from './transport.js';

/** How pull and push reach registries. */
export interface RegistryAccess {
  /**
   * Supplies the transport for a registry host; the caller owns it and closes it. Without it, one
   * transport per registry is made from `transportOptions` (with the credentials found in the
   * Docker config files unless `transportOptions.credentials` is set) and closed when done.
   */
  transport?: (registry: string) => RegistryTransport;
  transportOptions?: TransportOptions;
  /** Where credentials are looked up (environment, helper timeout). */
  credentialLookup?: CredentialLookupOptions;
}

/**
 * The transport to one registry for something that talks to it now and then, such as a lazy
 * image: made on first use, shared by the uses that overlap, and closed when the last one ends.
 */
export class RegistrySession {
  #transport: Promise<RegistryTransport> | undefined;
  #users = 0;

  constructor(
    readonly registry: string,
    private readonly access: RegistryAccess,
  ) {}

  async use<T>(action: (transport: RegistryTransport) => Promise<T>): Promise<T> {
    if (this.access.transport !== undefined) return action(this.access.transport(this.registry));
    this.#users++;
    try {
      this.#transport ??= this.#open();
      return await action(await this.#transport);
    } finally {
      if (--this.#users === 0) {
        const transport = this.#transport;
        this.#transport = undefined;
        await transport?.then((t) => t.close(), () => undefined);
      }
    }
  }

  async #open(): Promise<RegistryTransport> {
    const options = this.access.transportOptions ?? {};
    const credentials = options.credentials ?? (await resolveCredentials(this.registry, this.access.credentialLookup));
    // Loaded here, with undici, the first time a registry is contacted: a build from cached images never is.
    const { RegistryTransport } = await import('./transport.js');
    return new RegistryTransport(this.registry, { ...options, ...(credentials !== undefined && { credentials }) });
  }
}

/** Runs `action` with a transport for `registry`, closing it afterwards when it was made here. */
export function withRegistry<T>(registry: string, access: RegistryAccess, action: (transport: RegistryTransport) => Promise<T>): Promise<T> {
  return new RegistrySession(registry, access).use(action);
}
