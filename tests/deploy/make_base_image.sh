#!/usr/bin/env bash
# Make a minimal Debian root file system with what the Dockerfile's build stage needs
# (python3 with venv and headers, g++, cmake) and write it as a tarball, for the container
# build test: no registry for base images is reachable here, so the test brings its own.
#   make_base_image.sh OUT.tar [SUITE] [MIRROR]
# The tarball is written atomically; an existing one is kept (the caller caches it).
set -euo pipefail

out=${1:?usage: make_base_image.sh OUT.tar [SUITE] [MIRROR]}
suite=${2:-bookworm}
mirror=${3:-http://deb.debian.org/debian}
[ -s "$out" ] && exit 0
case "$suite" in *[!a-z]* | "") echo "bad suite name: $suite" >&2; exit 2 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-dev,python3-pip,g++,make,cmake,ca-certificates \
  "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# Package lists and caches are not part of an image.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
mkdir -p "$(dirname "$out")"
tar -C "$root" --numeric-owner -cf "$work/base.tar" .
mv "$work/base.tar" "$out"
