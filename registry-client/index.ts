export { parseWwwAuthenticate, type AuthChallenge } from './auth-challenge.js';
export {
  credentialFiles,
  DOCKER_HUB_CONFIG_KEY,
  resolveCredentials,
  runCredentialHelper,
  type CredentialLookupOptions,
  type RegistryCredentials,
} from './credentials.js';
export { errorLabel, redactUrl, RegistryError } from './errors.js';
export {
  DOCKER_HUB,
  formatReference,
  isDockerHub,
  isLoopbackRegistry,
  isValidRepositoryName,
  isValidTag,
  manifestTarget,
  parseReference,
  registryApiHost,
  registryBaseUrl,
  type ImageReference,
} from './reference.js';
export { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
// The class itself is imported from transport.js where it is used: it loads undici, which a build
// from cached images does without.
export type { HttpMethod, RegistryRequest, RegistryResponse, RegistryTransport, RetryNotice, TransportOptions } from './transport.js';
export { BlobCache, type DownloadOptions, type RangedBody } from './blob-cache.js';
export { MANIFEST_ACCEPT } from './manifest-types.js';
export { formatPlatform, noMatchingPlatform, normalizePlatform, platformMatches } from '../layers/platform.js';
export type { ProgressListener, TransferEvent, TransferPhase } from './progress.js';
export { pullImage, remoteImage, type PullOptions, type RemoteImage, type RemoteImageOptions } from './pull.js';
export { pushImage, type PushOptions, type PushResult } from './push.js';
export { openRepository, resolveRemote, type RemoteOptions, type RemoteRepository, type RemoteRoot } from './remote-image.js';
export type { RegistryAccess } from './session.js';
