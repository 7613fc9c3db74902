#!/usr/bin/env bash
# Runs the whole test suite from a clean clone: installs the Debian tools the tests drive
# (when root), installs and builds the project, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

needed=(skopeo umoci oci-image-tool busybox-static zstd xz-utils bzip2 tar runc debootstrap uidmap attr iproute2 util-linux passwd docker-registry apache2-utils openssl git slirp4netns podman containerd)
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
trap 'rm -rf "$TSBUILD_CACHE_DIR"' EXIT
node --test --test-concurrency=2 dist/test/
