/**
 * kaniko's executor flags as `tsbuild executor` accepts them, each with what it becomes in tsbuild.
 * The parser, the translation (executor.ts) and the migration table in the docs all read this.
 */

const list = { type: 'string', array: true, nargs: 1, default: [] as string[] } as const;

/** Flags that map onto tsbuild's: the yargs definition, and the tsbuild equivalent for the docs. */
export const kanikoOptions = {
  context: { alias: 'c', type: 'string', default: '/workspace/', describe: 'build context: DIR, dir://DIR, or a gzipped tarball tar://FILE.tar.gz or tar://stdin', tsbuild: 'the CONTEXT argument (a tarball is unpacked into a temporary directory)' },
  'context-sub-path': { type: 'string', describe: 'sub path within the context', tsbuild: 'CONTEXT/SUBPATH as the CONTEXT argument' },
  dockerfile: { alias: 'f', type: 'string', default: 'Dockerfile', describe: 'Dockerfile, as a path or relative to the context', tsbuild: '-f/--file' },
  destination: { alias: 'd', ...list, describe: 'image name to push to (repeatable)', tsbuild: '-t NAME --push' },
  'no-push': { type: 'boolean', default: false, describe: 'do not push the image', tsbuild: 'leave out --push' },
  'tar-path': { type: 'string', describe: 'write the image as a docker-archive tarball', tsbuild: '--output type=docker,dest=FILE' },
  'oci-layout-path': { type: 'string', describe: 'write the image as an OCI layout directory', tsbuild: '--output type=oci,dest=DIR' },
  cache: { type: 'boolean', default: false, describe: 'use the layer cache in the cache repository', tsbuild: '--cache-repo (without it: --no-cache)' },
  'cache-repo': { type: 'string', describe: 'cache repository (default: DESTINATION/cache)', tsbuild: '--cache-repo' },
  'cache-ttl': { type: 'string', describe: 'ignore cache entries older than this Go duration, e.g. 336h', tsbuild: '--cache-ttl' },
  'no-push-cache': { type: 'boolean', default: false, describe: 'read the cache repository without writing to it', tsbuild: '--cache-from type=registry,ref=REPO' },
  'cache-run-layers': { type: 'boolean', describe: 'cache RUN layers (true is the only choice)', tsbuild: 'always' },
  'cache-copy-layers': { type: 'boolean', describe: 'cache COPY layers', tsbuild: 'always' },
  'build-arg': { ...list, describe: 'ARG value KEY=VALUE, or KEY to take it from the environment', tsbuild: '--build-arg' },
  target: { type: 'string', describe: 'stage to build', tsbuild: '--target' },
  label: { ...list, describe: 'image label KEY=VALUE', tsbuild: '--label' },
  'custom-platform': { type: 'string', describe: 'platform to build for, os/arch[/variant]', tsbuild: '--platform' },
  insecure: { type: 'boolean', default: false, describe: 'push over plain HTTP', tsbuild: '--insecure-registry HOST for each destination registry' },
  'insecure-registry': { ...list, describe: 'registry reached over plain HTTP (repeatable)', tsbuild: '--insecure-registry' },
  'skip-tls-verify': { type: 'boolean', default: false, describe: 'push without verifying TLS: accepted for registries reached over plain HTTP', tsbuild: '--insecure-registry (plain HTTP) or --registry-ca FILE' },
  'skip-tls-verify-registry': { ...list, describe: 'registry whose TLS is not verified: accepted when it is reached over plain HTTP', tsbuild: '--insecure-registry (plain HTTP) or --registry-ca FILE' },
  'registry-certificate': { ...list, describe: 'REGISTRY=PEM-FILE to trust for a registry', tsbuild: '--registry-ca FILE (one file for every registry)' },
  'digest-file': { type: 'string', describe: 'write the image digest to this file', tsbuild: '--digest-file' },
  'image-name-with-digest-file': { type: 'string', describe: 'write DESTINATION@DIGEST lines to this file', tsbuild: 'written by tsbuild executor; --metadata-file has the same' },
  reproducible: { type: 'boolean', default: false, describe: 'strip timestamps from the image', tsbuild: '--source-date-epoch 0' },
  force: { type: 'boolean', default: false, describe: 'build outside a container', tsbuild: '--force-in-place' },
  verbosity: { alias: 'v', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'panic'] as const, default: 'info' as const, describe: 'log level', tsbuild: 'debug/trace: --explain-cache; warn and above: --quiet' },
  'log-format': { choices: ['text', 'color', 'json'] as const, default: 'color' as const, describe: 'log format', tsbuild: '--progress=plain (text), auto (color), json (json)' },
  'log-timestamp': { type: 'boolean', default: false, describe: 'timestamps in the log (false is the only choice)', tsbuild: 'none' },
  compression: { choices: ['gzip', 'zstd'] as const, describe: 'layer compression', tsbuild: '--compression' },
  'compression-level': { type: 'number', describe: 'compression level', tsbuild: '--compression-level' },
  'snapshot-mode': { choices: ['full', 'redo', 'time'] as const, describe: 'how changes are found: tsbuild always compares contents, as full does', tsbuild: 'always full' },
  'use-new-run': { type: 'boolean', describe: 'kaniko-internal way of finding changes: no effect', tsbuild: 'no effect' },
  cleanup: { type: 'boolean', describe: 'clean the filesystem at the end: tsbuild always does', tsbuild: 'always' },
  'compressed-caching': { type: 'boolean', describe: 'memory trade-off of kaniko\'s cache: no effect', tsbuild: 'no effect' },
  'push-retry': { type: 'number', describe: 'push retries: tsbuild retries transient registry failures itself', tsbuild: 'built in' },
  'skip-unused-stages': { type: 'boolean', describe: 'build only the stages the target needs: tsbuild always does', tsbuild: 'always' },
  'ignore-var-run': { type: 'boolean', describe: 'leave /var/run out of snapshots (true is the only choice)', tsbuild: 'always' },
} as const;

/** kaniko flags with no tsbuild equivalent, and what to do instead: given, they fail the command at once. */
export const kanikoRefused: Readonly<Record<string, string>> = {
  bucket: 'tsbuild reads the build context from a directory: download and unpack the bucket, then pass --context dir://DIR',
  'cache-dir': 'kaniko\'s base image cache filled by the warmer has no equivalent: tsbuild keeps pulled images under $TSBUILD_CACHE_DIR/images',
  'image-name-tag-with-digest-file': 'use --image-name-with-digest-file or --digest-file',
  'kaniko-dir': 'tsbuild keeps its files under $TSBUILD_CACHE_DIR and the temporary directory',
  'single-snapshot': 'tsbuild writes one layer per step; squashing is not supported',
  'registry-mirror': 'pull from the mirror by naming it in FROM, or copy the base image there with skopeo',
  'registry-client-cert': 'client certificates (mTLS) for registries are not supported',
  'ignore-path': 'tsbuild snapshots the whole root file system of a step; exclude paths with .dockerignore or by removing them in the RUN step',
  git: 'clone the repository and pass --context dir://DIR',
  'image-fs-extract-retry': 'tsbuild verifies every blob as it is extracted; retries are not configurable',
  'image-download-retry': 'tsbuild retries transient registry failures itself; the count is not configurable',
  'insecure-pull': 'name each plain-HTTP registry with --insecure-registry HOST (registries on loopback always are)',
  'skip-tls-verify-pull': 'trust the registry\'s CA with --registry-certificate REGISTRY=FILE, or use --insecure-registry HOST for plain HTTP',
  'force-build-metadata': 'tsbuild records metadata-only steps in the history without layers, as BuildKit does',
  'push-ignore-immutable-tag-errors': 'a refused push fails the build',
  'skip-push-permission-check': 'tsbuild does not probe push permissions before building',
  'skip-default-registry-fallback': 'registry mirrors are not supported',
  'credential-helpers': 'credentials come from $DOCKER_CONFIG/config.json and the credential helpers it names',
  materialize: 'tsbuild always materialises every step\'s file system',
  'preserve-context': 'tsbuild never modifies the build context',
};
