#!/usr/bin/env bash
# The fast tier, `npm test` (after `npm run build`): unit tests of the architecture, the frontend,
# the planner, the model, the cache keys, layers and reference parsing. They need no root and no
# container tool, and a test needing a tool this machine lacks skips saying why. The full suite,
# which also runs builds, isolation backends and a registry, is test/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

fast=(
  architecture/
  builder/frontend/
  builder/plan/
  builder/context/
  builder/fs/
  builder/output/
  builder/cache/cache-key.test.js
  builder/cache/content-checksum.test.js
  builder/cache/explain.test.js
  builder/cache/local-store-size.test.js
  builder/attest/parsers.test.js
  layers/
  examples/
  registry-client/reference.test.js
  registry-client/auth-challenge.test.js
  registry-client/errors.test.js
  registry-client/credentials.test.js
  conformance/corpus.test.js
  conformance/harness.test.js
)

TSBUILD_CACHE_DIR="$(mktemp -d)"
export TSBUILD_CACHE_DIR
trap 'rm -rf "$TSBUILD_CACHE_DIR"' EXIT
export TSBUILD_TEST_TIER=fast
# layers/compression.test.js drives the gzip, zstd, xz and bzip2 tools at every level: full suite only.
files=()
for entry in "${fast[@]}"; do
  if [ -d "dist/test/$entry" ]; then
    while IFS= read -r file; do files+=("$file"); done < <(find "dist/test/$entry" -name '*.test.js' ! -path '*/layers/compression.test.js' | sort)
  else
    files+=("dist/test/$entry")
  fi
done
node --test --test-concurrency=2 "${files[@]}"
