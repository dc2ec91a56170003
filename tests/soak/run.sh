#!/usr/bin/env bash
# crmgate soak (`make soak`): runs tests/soak/soak.js (see its header for what it drives and
# checks). As root, the whole soak runs inside a throw-away network namespace whose only
# interface is lo, removed at the end: the forward-mode agents name the real CRM hosts, and no
# process of the soak can reach past this machine whatever crmgate does with them.
#
# Environment: SOAK_SECONDS (600), SOAK_LOOPS (2), SOAK_SAMPLE_SECONDS (10), SOAK_CHURN_SECONDS
# (5), CRMGATE_BIN (./crmgate), SOAK_NO_NETNS (set: stay in this namespace).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${CRMGATE_SOAK_NETNS:-}" ] && [ -z "${SOAK_NO_NETNS:-}" ] && [ "$(id -u)" -eq 0 ] &&
    command -v ip >/dev/null; then
    ns=cgs-$$
    ip netns add "$ns"
    trap 'ip netns del "$ns" 2>/dev/null || true; rm -rf "/etc/netns/$ns"' EXIT
    trap 'exit 130' INT TERM
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$ns/hosts"
    echo "soak: running inside network namespace $ns (interfaces: $(ip -n "$ns" -brief link | awk '{print $1}' | tr '\n' ' '))"
    rc=0
    ip netns exec "$ns" env CRMGATE_SOAK_NETNS="$ns" bash "$0" "$@" || rc=$?
    exit "$rc"
fi

cd "$top"
exec node tests/soak/soak.js
