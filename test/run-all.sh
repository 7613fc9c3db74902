#!/usr/bin/env bash
# Runs the whole test suite from a clean clone: installs the Debian tools the tests drive
# (when root), installs and builds the project, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(skopeo umoci oci-image-tool busybox-static zstd xz-utils bzip2 tar runc debootstrap uidmap attr iproute2 util-linux passwd docker-registry apache2-utils openssl git slirp4netns)
if [ "$(id -u)" = 0 ]; then
  missing=()
  for pkg in "${needed[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "not root: assuming these Debian packages are installed: ${needed[*]}" >&2
fi

npm ci --no-audit --no-fund

# Every run starts from an empty build cache and rootfs cache, so no test sees another run's results.
TSBUILD_CACHE_DIR="$(mktemp -d)"
export TSBUILD_CACHE_DIR
report="$(mktemp)"
trap 'rm -rf "$TSBUILD_CACHE_DIR" "$report"' EXIT
# The whole suite runs; a test whose requirement is missing fails as root or in CI (see
# test/support/requirement.ts), and any skip at all fails the run: the suite is not green by skipping.
status=0
node --test --test-reporter=tap --test-concurrency=2 dist/test/ | tee "$report" || status=$?
skipped="$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$report" | tail -n 1)"
if [ -z "$skipped" ]; then
  echo "run-all: no test summary in the output" >&2
  exit 1
fi
if [ "$skipped" != 0 ]; then
  echo "run-all: $skipped test(s) skipped; their reasons are the '# SKIP' lines above" >&2
  exit 1
fi
exit "$status"
