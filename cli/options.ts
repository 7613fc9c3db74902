/**
 * The flags of each command, as yargs option definitions. The parser (run.ts) and the generated
 * CLI reference (docs/cli.md, see cli-reference.ts) both read them from here.
 */

const stringList = { type: 'string', array: true, nargs: 1, default: [] as string[] } as const;

/** How registries are reached: every command that pulls or pushes takes these. */
export const registryOptions = {
  'insecure-registry': { ...stringList, describe: 'registry host[:port] reached over plain HTTP (loopback always is)' },
  'registry-ca': { type: 'string', describe: 'PEM file of extra CA certificates to trust for registries' },
} as const;

/** What a plan needs: `tsbuild plan` and `tsbuild build` take these. */
export const planOptions = {
  file: { alias: 'f', type: 'string', describe: 'Dockerfile (default: CONTEXT/Dockerfile)' },
  'build-arg': { ...stringList, describe: 'build-time variable KEY=VALUE (KEY alone takes the value from the environment)' },
  target: { type: 'string', describe: 'stage to build' },
  platform: { ...stringList, describe: 'target platform(s), os/arch[/variant], comma-separated, e.g. linux/amd64,linux/arm64' },
  'build-context': { ...stringList, describe: 'named context NAME=DIR or NAME=oci-layout://DIR[:NAME:TAG][@sha256:DIGEST]' },
  network: { choices: ['default', 'none', 'host'] as const, describe: 'network of RUN steps that set no RUN --network (default: default)' },
  'add-host': { ...stringList, describe: 'HOST:IP entry for the /etc/hosts of every RUN step' },
  pull: { type: 'boolean', default: false, describe: 'resolve every base image against its registry, even when the image cache holds it' },
  ...registryOptions,
} as const;

export const buildOptions = {
  ...planOptions,
  tag: { alias: 't', ...stringList, describe: 'name:tag for the image' },
  output: {
    alias: 'o',
    ...stringList,
    describe:
      'where the image goes (repeatable): type=oci,dest=DIR|FILE.tar|-[,tar=true|false] (an OCI layout: a tar when tar=true, dest ends in .tar or is -, else a directory); ' +
      'type=docker,dest=FILE|- (a docker load archive, one platform); type=registry[,name=NAME] (push); type=local,dest=DIR (the final filesystem); type=tar,dest=FILE|- (the final filesystem as a tar); ' +
      'oci, docker and registry take name=NAME to replace the -t names (quote the field for several: "name=a:1,b:1"); a bare DIR means type=local,dest=DIR and - means type=tar,dest=-',
  },
  annotation: {
    ...stringList,
    describe:
      'OCI annotation KEY=VALUE for the image manifest, or LEVEL:KEY=VALUE with LEVEL manifest, manifest-descriptor, index or index-descriptor ' +
      '(comma-separated for several; a manifest level may name one platform: manifest[linux/amd64]:KEY=VALUE); applies to type=oci, type=registry and the local store',
  },
  label: { ...stringList, describe: 'image label KEY=VALUE' },
  iidfile: { type: 'string', describe: 'write the image ID to this file' },
  push: { type: 'boolean', default: false, describe: 'push every -t name (same as --output type=registry)' },
  'digest-file': { type: 'string', describe: 'write the pushed or exported manifest (or index) digest to this file' },
  'metadata-file': { type: 'string', describe: 'write the digest, names and descriptor as JSON to this file' },
  progress: {
    choices: ['auto', 'tty', 'plain', 'json'] as const,
    default: 'auto' as const,
    describe: 'how progress is shown on stderr: tty redraws the running steps in place, plain prints numbered lines, json one event per line; auto is tty on a terminal, else plain',
  },
  report: {
    choices: ['short', 'full', 'json', 'none'] as const,
    describe: 'layer report after the build: the heaviest steps with cache state, time and layer size (short), every step (full), one JSON line (json) or nothing (default: short, json with --progress=json)',
  },
  quiet: { alias: 'q', type: 'boolean', default: false, describe: 'print only the image ID' },
  compression: { choices: ['gzip', 'zstd', 'uncompressed'] as const, default: 'gzip' as const, describe: 'how layers are compressed' },
  'compression-level': { type: 'number', describe: 'compression level: 1-9 for gzip, 1-22 for zstd' },
  isolation: { choices: ['auto', 'oci', 'chroot', 'rootless', 'none'] as const, default: 'auto' as const, describe: 'how RUN steps are isolated' },
  'run-timeout': { type: 'number', describe: 'kill a RUN step after this many seconds and fail the build' },
  secret: { ...stringList, describe: 'secret for RUN --mount=type=secret: id=ID,src=PATH or id=ID,env=VAR' },
  ssh: { ...stringList, describe: 'SSH agent for RUN --mount=type=ssh: ID (the agent at $SSH_AUTH_SOCK) or ID=SOCKET' },
  'no-cache': { type: 'boolean', default: false, describe: 'run every step instead of reusing cached results' },
  'no-cache-filter': { ...stringList, describe: 'stage whose steps always run' },
  'cache-dir': { type: 'string', describe: 'build cache directory (default: <cache dir>/build-cache)' },
  'cache-max-size': { type: 'string', describe: 'evict least recently used cache entries beyond this size, e.g. 10GiB' },
  'cache-repo': { type: 'string', describe: 'registry repository REGISTRY/REPO that shares the build cache between machines' },
  'cache-from': { ...stringList, describe: 'read the build cache from type=registry,ref=REGISTRY/REPO or type=local,src=DIR' },
  'cache-to': { ...stringList, describe: 'write the build cache to type=registry,ref=REGISTRY/REPO[,mode=min|max] or type=local,dest=DIR' },
  'cache-ttl': { type: 'string', describe: 'ignore cache repository entries older than this, e.g. 168h, 30m, 7d or 3600 (seconds)' },
  'explain-cache': { type: 'boolean', default: false, describe: 'print every input that made a step miss the cache' },
  'force-in-place': { type: 'boolean', default: false, describe: 'allow --isolation=none outside a detected container' },
  'source-date-epoch': { type: 'string', describe: 'clamp timestamps to this time (default: $SOURCE_DATE_EPOCH)' },
  provenance: { type: 'string', describe: 'attach SLSA provenance: true, false, or mode=min|max[,builder-id=URI]' },
  sbom: { type: 'string', describe: "attach an SPDX SBOM of the image's dpkg, apk and npm packages: true or false" },
} as const;

export const pullOptions = {
  platform: { type: 'string', describe: 'os/arch[/variant] (default: this machine)' },
  ...registryOptions,
  progress: { choices: ['auto', 'tty', 'plain', 'json'] as const, default: 'auto' as const, describe: 'how progress is shown on stderr (see build)' },
} as const;

export const pruneOptions = {
  'cache-dir': { type: 'string', describe: 'build cache directory (default: <cache dir>/build-cache)' },
} as const;
