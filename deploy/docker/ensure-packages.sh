#!/bin/sh
# Install the named Debian/Ubuntu packages that the base image lacks, and nothing when it
# has them all (so a base image that already carries them needs no package mirror).
#   ensure-packages.sh PKG...
set -eu
missing=""
for pkg in "$@"; do
  case "$pkg" in *[!a-z0-9.+-]*) echo "ensure-packages: bad package name: $pkg" >&2; exit 2 ;; esac
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086  # $missing is a list of validated package names
apt-get install -y -q --no-install-recommends $missing
rm -rf /var/lib/apt/lists/*
