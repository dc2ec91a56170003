#!/bin/sh
# Install what building and testing crmgate needs, and nothing twice:
# Debian packages that are missing (one apt-get update first, as root), then
# the pinned npm test clients (npm ci) when node_modules is missing or stale.
#   scripts/deps.sh bench   only what make bench adds (after make deps): mitmproxy (mitmdump,
#                           the interception peer; ~40 packages) and perf (sync counts). Not
#                           root: says what is missing and goes on (the bench then reports
#                           those rows as not run).
set -eu

PKGS="build-essential pkg-config libevent-dev libssl-dev node-llhttp libcurl4-openssl-dev
      liblmdb-dev lmdb-utils libjansson-dev libcmocka-dev zlib1g-dev nginx-light wrk curl
      python3 systemd clang-format clang libclang-rt-14-dev valgrind iproute2 iptables
      openssl ca-certificates"
bench=no
if [ "${1:-}" = bench ]; then
    bench=yes
    PKGS="mitmproxy linux-perf"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# Node.js: any install that provides node and npm will do (Debian's is fine).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ] && [ "$bench" = yes ]; then
        echo "deps: not installing the bench-only packages:$missing (not root)" >&2
        exit 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing Debian packages:$missing" >&2
        echo "deps: run 'make deps' as root, or install them yourself" >&2
        exit 1
    fi
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi

# nginx-light's postinst starts the system nginx on port 80; crmgate's bench
# runs its own nginx instances, so the system one is not needed.

[ "$bench" = no ] || exit 0
# By content, not by time: a git checkout gives package-lock.json a new mtime without changing it.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.package-lock.json ] ||
   [ "$(cat node_modules/.crmgate-lock.sha256 2>/dev/null)" != "$lock_sum" ]; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_sum" > node_modules/.crmgate-lock.sha256
fi
