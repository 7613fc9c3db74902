/** Where tsbuild keeps things on disk by default, as the caller's environment says. */
import os from 'node:os';
import path from 'node:path';

/**
 * The default local image store: an OCI layout at `$TSBUILD_STORE`, else
 * `$XDG_DATA_HOME/tsbuild/store`, else `~/.local/share/tsbuild/store`.
 */
export function defaultStoreDir(env: NodeJS.ProcessEnv): string {
  if (env.TSBUILD_STORE) return path.resolve(env.TSBUILD_STORE);
  const dataHome = env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'tsbuild', 'store');
}

/** tsbuild's cache directory: `$TSBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/tsbuild`, else `~/.cache/tsbuild`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.TSBUILD_CACHE_DIR) return path.resolve(env.TSBUILD_CACHE_DIR);
  const cacheHome = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'tsbuild');
}
