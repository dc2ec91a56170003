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

# shellcheck source=tests/lo_netns.sh
. "$here/../lo_netns.sh"
[ -n "${SOAK_NO_NETNS:-}" ] || lo_netns_reexec cgs CRMGATE_SOAK_NETNS $'127.0.0.1 localhost\n::1 localhost\n' "$0" "$@"

cd "$top"
exec node tests/soak/soak.js
