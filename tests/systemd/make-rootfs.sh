#!/usr/bin/env bash
# Builds (once) a minimal Debian bookworm root filesystem that boots systemd under systemd-nspawn,
# with the shared libraries agente-hibrido links against, and prints its path.
#
#   tests/systemd/make-rootfs.sh [CACHE_DIR]      (default /var/cache/agente-hibrido-test)
#
# The rootfs is built in a temporary directory next to the cache and renamed into place only when
# debootstrap succeeded, so a half-built tree is never used. Its name carries a hash of the package
# list: changing the list builds a new one instead of reusing a stale one. Exit codes: 0 ok (path on
# stdout), 2 cannot build here (no root, no debootstrap, no network; reason on stderr), 1 other errors.
set -euo pipefail

cache="${1:-${AGENTE_ROOTFS_CACHE:-/var/cache/agente-hibrido-test}}"
suite=bookworm
mirror="${AGENTE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=(
  systemd systemd-sysv dbus curl procps wrk
  # what `ldd build/agente-hibrido` lists (dpkg -S on a bookworm host)
  libspdlog1.10 libfmt9 libtomlplusplus3 libsimdjson14 libsystemd0 libssl3 libsqlite3-0 libstdc++6
  libgcc-s1
  # the RAG engine's parsers and stemmer (src/app/rag)
  libcmark0.30.2 libxml2 libpoppler-cpp0v5 libstemmer0d
)
list=$(IFS=,; echo "${packages[*]}")
hash=$(printf '%s %s %s' "$suite" "$mirror" "$list" | sha256sum | cut -c1-12)
rootfs="$cache/rootfs-$suite-$hash"

[ "$(id -u)" -eq 0 ] || { echo "needs root (debootstrap, systemd-nspawn)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (scripts/install-deps)" >&2; exit 2; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9   # one builder at a time; a second caller waits and then finds the finished tree
# Left by a builder that was killed (we hold the lock: nobody is building now).
for stale in "$cache"/.building-*; do
  [ -e "$stale" ] || continue
  grep -qs " $stale/" /proc/mounts && continue   # debootstrap's /proc or /sys still mounted there
  rm -rf --one-file-system "$stale"
done

if [ -x "$rootfs/lib/systemd/systemd" ] && [ -f "$rootfs/.agente-complete" ]; then
  echo "$rootfs"
  exit 0
fi

tmp=$(mktemp -d "$cache/.building-XXXXXX")
trap 'rm -rf --one-file-system "$tmp"' EXIT
if ! debootstrap --variant=minbase --include="$list" "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1; then
  tail -n 20 "$tmp.log" >&2
  if grep -qiE "Failed getting release file|Could not resolve|Temporary failure|Connection (refused|timed out)|Network is unreachable|Unable to fetch" "$tmp.log"; then
    rm -f "$tmp.log"
    echo "debootstrap could not reach $mirror" >&2
    exit 2
  fi
  rm -f "$tmp.log"
  echo "debootstrap failed" >&2
  exit 1
fi
rm -f "$tmp.log"

# A container needs no getty on a console nobody reads, nor timers that wake it up for apt.
chroot "$tmp" systemctl mask console-getty.service getty@tty1.service apt-daily.timer \
  apt-daily-upgrade.timer systemd-timesyncd.service >/dev/null 2>&1 || true
echo "agente-test" >"$tmp/etc/hostname"
chroot "$tmp" apt-get clean
touch "$tmp/.agente-complete"
rm -rf --one-file-system "$rootfs"
mv "$tmp" "$rootfs"
trap - EXIT
echo "$rootfs"
