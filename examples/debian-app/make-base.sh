#!/usr/bin/env bash
# Builds a Debian bookworm minbase image with debootstrap into an OCI layout, tagged "bookworm",
# for use as a base through --build-context. Needs root, debootstrap and umoci.
set -euo pipefail
dest=${1:?usage: make-base.sh LAYOUT_DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

umoci init --layout "$dest"
umoci new --image "$dest:bookworm"
umoci unpack --image "$dest:bookworm" "$work/bundle"
debootstrap --variant=minbase bookworm "$work/bundle/rootfs" "$mirror"
rm -rf "$work"/bundle/rootfs/var/cache/apt/archives/*.deb "$work"/bundle/rootfs/var/lib/apt/lists/*
umoci repack --image "$dest:bookworm" "$work/bundle"
umoci config --image "$dest:bookworm" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd bash
