#!/usr/bin/env bash
# custody_wrk.sh - what credential custody costs through the whole proxy: the same crmgate
# (policy enforced, 2 workers) and the same nginx upstream as `make bench`, read with
#   own    the agent's own HubSpot token (a registered fingerprint, allow_passthrough)
#   key    a crmgate key: key lookup, integration read and open, token injected
# alternating, BENCH_ROUNDS times each (noise on a shared machine), wrk -c64 -t2.
#   bash tests/bench/custody_wrk.sh      (after make; loopback only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${CRMGATE_BIN:-$top/crmgate}
secs=${BENCH_SECONDS:-8}
rounds=${BENCH_ROUNDS:-2}
token=pat-na1-bench-0000-0000-000000000000
for v in secs rounds; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] && [ "${!v}" -le 60 ] ||
        { echo "custody_wrk: $v must be 1..60" >&2; exit 2; }
done
for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "custody_wrk: $tool not found" >&2; exit 2; }
done
dir=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-custody-wrk.XXXXXX")
chmod 0755 "$dir"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

up_port=$(free_port)
gate_port=$(free_port)
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|0|g" -e "s|@UPSTREAM_PORT@|$up_port|g" -e "s|@WORKERS@|1|g" \
    -e "s|@USER@|$user_line|g" "$here/nginx-upstream.conf.in" >"$dir/nginx-upstream.conf"
cp "$here/contact.json" "$dir/contact.json"
chmod 0644 "$dir/contact.json"
nginx -p "$dir" -e "$dir/upstream.stderr.log" -c "$dir/nginx-upstream.conf" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$up_port/" && break; sleep 0.1; done

mkdir -p "$dir/rules"
cat >"$dir/rules/bench.json" <<'JSON'
{"workspace": "bench", "allow_passthrough": true, "hubspot": {"objects": {"contacts": {"read": ["createdate", "email",
 "firstname", "hs_object_id", "lastmodifieddate", "lastname", "lifecyclestage"]}}}}
JSON
"$bin" vault keygen --out "$dir/vault.key" 2>/dev/null
fp=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
printf '{"rules_dir": "%s", "callers": [{"token_sha256": "%s", "workspace": "bench", "kind": "workflow"}], "vault": {"key_file": "%s"}}\n' \
    "$dir/rules" "$fp" "$dir/vault.key" >"$dir/crmgate.json"
"$bin" serve -c "$dir/crmgate.json" --listen "127.0.0.1:$gate_port" --upstream "hubspot=http://127.0.0.1:$up_port" \
    --state-dir "$dir/state" --workers 2 --log-level notice 2>"$dir/gate.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "reverse listener" "$dir/gate.log" && break; sleep 0.1; done
printf '%s' "$token" | "$bin" integration add --state-dir "$dir/state" --workspace bench --crm hubspot \
    --type private-app >/dev/null
key=$("$bin" key create --state-dir "$dir/state" --workspace bench --kind workflow 2>/dev/null)
url="http://127.0.0.1:$gate_port/hubspot/crm/v3/objects/contacts/1"
for auth in "$token" "$key"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $auth" "$url")
    [ "$code" = 200 ] || { echo "custody_wrk: preflight got $code" >&2; cat "$dir/gate.log" >&2; exit 1; }
done

run() { # name auth
    wrk -t2 -c64 -d"${secs}s" --latency -H "Authorization: Bearer $2" "$url" >"$dir/wrk.log" 2>&1
    local rps p50 p99 bad
    rps=$(awk '/Requests\/sec/ { print $2 }' "$dir/wrk.log")
    p50=$(awk '$1 == "50%" { print $2 }' "$dir/wrk.log")
    p99=$(awk '$1 == "99%" { print $2 }' "$dir/wrk.log")
    bad=$(awk '/Non-2xx|Socket errors/' "$dir/wrk.log")
    printf '| %-4s | %10s | %8s | %8s | %s\n' "$1" "$rps" "$p50" "$p99" "${bad:-ok}"
}
wrk -t2 -c64 -d2s -H "Authorization: Bearer $key" "$url" >/dev/null 2>&1
echo "| auth | req/s | p50 | p99 | checks"
echo "|---|---:|---:|---:|---"
for _ in $(seq "$rounds"); do
    run own "$token"
    run key "$key"
done
