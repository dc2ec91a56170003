#!/usr/bin/env bash
# make demo: the fake CRM and crmgate on free loopback ports with a throwaway state directory,
# the scripted agent (tests/demo/agent.js: both official SDKs, enforce then dry-run), then
# `crmgate diffs` and `crmgate stats`. Everything started here is stopped and removed on exit.
#
#   CRMGATE_BIN=./crmgate bash tests/demo/run.sh
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${CRMGATE_BIN:-$REPO/crmgate}
READY_TIMEOUT_S=${DEMO_READY_TIMEOUT_S:-20}
HS_TOKEN=pat-na1-demo0000-0000-0000-0000-000000000001
SF_TOKEN='00DDemo000000001!AQdemotoken'

[ -x "$BIN" ] || { echo "demo: $BIN is not built (run make)" >&2; exit 1; }
command -v node >/dev/null || { echo "demo: node is missing (run make deps)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-demo-XXXXXX")
FAKE_PID=
GATE_PID=
cleanup() {
    local rc=$?
    # Only the two processes started here, by their ids.
    [ -n "$GATE_PID" ] && kill -TERM "$GATE_PID" 2>/dev/null && wait "$GATE_PID" 2>/dev/null || true
    [ -n "$FAKE_PID" ] && kill -TERM "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null || true
    if [ "$rc" -ne 0 ] && [ -f "$TMP/crmgate.log" ]; then
        echo "--- crmgate log (tail) ---" >&2
        tail -n 20 "$TMP/crmgate.log" >&2
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for FILE REGEX PID WHAT: the first match of REGEX in FILE, within READY_TIMEOUT_S.
wait_for() {
    local file=$1 re=$2 pid=$3 what=$4 deadline=$((SECONDS + READY_TIMEOUT_S)) m
    while [ "$SECONDS" -lt "$deadline" ]; do
        m=$(grep -oE "$re" "$file" 2>/dev/null | head -n 1 || true)
        if [ -n "$m" ]; then
            echo "$m"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "demo: $what exited" >&2; cat "$file" >&2; return 1; }
        sleep 0.1
    done
    echo "demo: $what not ready after ${READY_TIMEOUT_S}s" >&2
    return 1
}

# The fake CRM (both HubSpot and Salesforce) on a free loopback port.
FAKECRM_EXIT_WITH_PARENT=1 node "$REPO/tests/fakecrm/server.js" --port 0 --host 127.0.0.1 \
    >"$TMP/fake.log" 2>&1 &
FAKE_PID=$!
FAKE=$(wait_for "$TMP/fake.log" 'http://127\.0\.0\.1:[0-9]+' "$FAKE_PID" "the fake CRM")

# One workspace, "demo": deals' amount and stage may change, a contact's phone may not;
# Salesforce opportunities may be updated and created. Both SDK tokens are registered to it,
# and the workspace lets agents call with their own tokens (allow_passthrough).
mkdir -p "$TMP/rules" "$TMP/state"
cat >"$TMP/rules/demo.json" <<'EOF'
{
  "workspace": "demo",
  "description": "The make demo workspace: a renewal agent.",
  "mode": "enforce",
  "allow_passthrough": true,
  "hubspot": {
    "objects": {
      "deals": {
        "read": ["dealname", "amount", "dealstage", "closedate", "hs_object_id"],
        "write": {"amount": {}, "dealstage": {}, "closedate": {}}
      },
      "contacts": {
        "read": ["email", "firstname", "phone", "hs_object_id"],
        "write": {"firstname": {}}
      }
    }
  },
  "salesforce": {
    "objects": {
      "Opportunity": {
        "read": ["Id", "Name", "StageName", "Amount", "CloseDate"],
        "write": {"Name": {}, "StageName": {}, "Amount": {}, "CloseDate": {}},
        "actions": {"create": true}
      }
    }
  }
}
EOF
HS_FP=$(printf '%s' "$HS_TOKEN" | "$BIN" token fingerprint)
SF_FP=$(printf '%s' "$SF_TOKEN" | "$BIN" token fingerprint)
cat >"$TMP/config.json" <<EOF
{
  "rules_dir": "$TMP/rules",
  "callers": [
    {"token_sha256": "$HS_FP", "workspace": "demo", "user": "ana@acme.example", "kind": "workflow"},
    {"token_sha256": "$SF_FP", "workspace": "demo", "user": "ana@acme.example", "kind": "workflow"}
  ]
}
EOF

"$BIN" serve -c "$TMP/config.json" --listen 127.0.0.1:0 --workers 2 --state-dir "$TMP/state" \
    --upstream "hubspot=$FAKE" --upstream "salesforce=$FAKE" --log-level notice \
    >"$TMP/crmgate.out" 2>"$TMP/crmgate.log" &
GATE_PID=$!
GATE=$(wait_for "$TMP/crmgate.log" 'reverse listener on 127\.0\.0\.1:[0-9]+' "$GATE_PID" crmgate)
GATE="http://${GATE#reverse listener on }"
SOCK="$TMP/state/admin.sock"

echo "crmgate $GATE in front of the fake CRM $FAKE; admin socket $SOCK"
echo
node "$REPO/tests/demo/agent.js" "$GATE" "$FAKE" "$BIN" "$SOCK"
echo
echo "$ crmgate diffs"
"$BIN" diffs --socket "$SOCK"
echo
echo "$ crmgate stats"
"$BIN" stats --socket "$SOCK"
