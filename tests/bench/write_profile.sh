#!/usr/bin/env bash
# crmgate write-path profile: the bench's read and write rows alone, quickly, for iterating on
# the hot path (make bench stays the reference). Loopback only; every run is bounded.
#
#   tests/bench/write_profile.sh rps [SECONDS]   wrk -t2 -c64 (after a 1 s warm-up) per kind:
#       req/s, p99, audit commits/s and requests per commit (the group commit's batch), and
#       crmgate's CPU time per request (utime + stime from /proc), and the bytes crmgate sent to
#       the disk per request (write_bytes of /proc/PID/io: LMDB's dirty pages); PERFSTAT=1 adds syscall
#       counts per request (perf stat; fdatasync and pwrite64 are LMDB's two syncs)
#   tests/bench/write_profile.sh cg              crmgate under callgrind (1 worker): N (2000)
#       sequential keep-alive requests per kind after 200 of warm-up; prints instructions per
#       request for the whole process, writer thread included, repeatable on a busy machine;
#       CG_OUT=DIR keeps the callgrind files (callgrind_annotate --inclusive=yes FILE)
#
# Kinds (KINDS, default "read audited dryrun"): read = GET contact 1 (make bench's read row),
# audited = PATCH contact 2 in an enforce workspace (before-read, intent commit, forward,
# outcome commit), dryrun = the same PATCH in a dry_run workspace; audited-spread and
# dryrun-spread PATCH contacts 1000..(999 + SPREAD, default 64) at random instead of one record (concurrent writes'
# before-reads then fold into batch/reads of several records, not reads of one). The upstream is nginx with
# the bench's canned answers (tests/bench/nginx-upstream.conf.in). STATE=DIR puts the store
# there (e.g. on /dev/shm: syncs cost nothing, CPU only). CRMGATE_BIN (./crmgate). WP_KEEP=1
# keeps the run's directory (config, logs, the LMDB store for mdb_stat).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mode=${1:-}
secs=${2:-5}
n=${N:-2000}
bin=${CRMGATE_BIN:-$top/crmgate}
kinds=${KINDS:-read audited dryrun}
token=pat-na1-bench-0000-0000-000000000000
dry_token=pat-na1-bench-dry0-0000-000000000000
body='{"properties":{"firstname":"Ada Bench"}}'

case $mode in rps | cg) ;; *) sed -n '2,20p' "$0" >&2; exit 2 ;; esac
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] && [ "$secs" -le 120 ] || { echo "SECONDS: 1..120" >&2; exit 2; }
[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 200 ] && [ "$n" -le 20000 ] || { echo "N: 200..20000" >&2; exit 2; }
n=$((n / 200 * 200))
for tool in nginx curl python3 $([ "$mode" = rps ] && echo wrk) $([ "$mode" = cg ] && echo valgrind callgrind_control callgrind_annotate); do
    command -v "$tool" >/dev/null || { echo "write_profile: $tool not found" >&2; exit 2; }
done
[ -x "$bin" ] || { echo "write_profile: no crmgate at $bin" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-wprof.XXXXXX")
chmod 0755 "$dir" # nginx workers drop to nobody when started as root
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ -n "${WP_KEEP:-}" ]; then echo "write_profile: kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The upstream: run.sh's canned contact (GET 1) and contact 2 (GET and PATCH).
up_port=$(free_port)
up_tls_port=$(free_port)
gate_port=$(free_port)
install -m 0644 "$here/contact.json" "$dir/contact.json"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$dir/https.key" -out "$dir/https.pem" 2>/dev/null
chmod 0644 "$dir/https.key" # a throw-away key, read by nginx workers
spread=${SPREAD:-64}
[[ $spread =~ ^[0-9]+$ ]] && [ "$spread" -ge 1 ] && [ "$spread" -le 999 ] || { echo "SPREAD: 1..999" >&2; exit 2; }
python3 "$here/upstream_answers.py" "$dir" 003000000000001AAA "$spread"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
sed -e "s|@DIR@|$dir|g" -e "s|@UPSTREAM_PORT@|$up_port|g" -e "s|@UPSTREAM_TLS_PORT@|$up_tls_port|g" \
    -e "s|@WORKERS@|1|g" -e "s|@USER@|$user_line|g" "$here/nginx-upstream.conf.in" >"$dir/upstream.conf"
nginx -p "$dir" -e "$dir/upstream.stderr.log" -c "$dir/upstream.conf" &
pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$up_port/" && break; sleep 0.1; done

# crmgate: run.sh's rules and callers.
mkdir -p "$dir/rules"
for ws in bench benchdry; do
    wmode=enforce
    [ "$ws" = benchdry ] && wmode=dry_run
    cat >"$dir/rules/$ws.json" <<JSON
{"workspace": "$ws", "mode": "$wmode", "allow_passthrough": true, "hubspot": {"objects": {"contacts": {"read": ["createdate",
 "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname", "lifecyclestage"], "write": {"firstname": {}}}}}}
JSON
done
printf '{"rules_dir": "%s", "callers": [{"token_sha256": "%s", "workspace": "bench", "kind": "workflow"}, {"token_sha256": "%s", "workspace": "benchdry", "kind": "workflow"}]}\n' \
    "$dir/rules" "$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" \
    "$(printf '%s' "$dry_token" | sha256sum | cut -d' ' -f1)" >"$dir/crmgate.json"
state=${STATE:-$dir/state}
mkdir -p "$state"
pre=()
workers=2
if [ "$mode" = cg ]; then
    pre=(valgrind --tool=callgrind "--callgrind-out-file=$dir/cg.out")
    workers=1
fi
"${pre[@]}" "$bin" serve -c "$dir/crmgate.json" --listen "127.0.0.1:$gate_port" \
    --upstream "hubspot=http://127.0.0.1:$up_port" --state-dir "$state" --workers "$workers" \
    --log-level notice 2>"$dir/crmgate.log" &
gate_pid=$!
pids+=("$gate_pid")
for _ in $(seq 600); do
    grep -q "reverse listener on 127.0.0.1:$gate_port" "$dir/crmgate.log" && break
    kill -0 "$gate_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q "reverse listener" "$dir/crmgate.log" || { echo "write_profile: crmgate did not start:" >&2; tail -5 "$dir/crmgate.log" >&2; exit 1; }

base=http://127.0.0.1:$gate_port/hubspot/crm/v3/objects/contacts
# kind -> token, url, curl arguments; and a pre-flight: 200 and the expected decision
setup_kind() {
    case $1 in
    read) tok=$token url=$base/1 want=allow args=() ;;
    audited) tok=$token url=$base/2 want=allow args=(-X PATCH -H 'Content-Type: application/json' --data "$body") ;;
    dryrun) tok=$dry_token url=$base/2 want=dry_run args=(-X PATCH -H 'Content-Type: application/json' --data "$body") ;;
    audited-spread) tok=$token url=$base/1000 want=allow args=(-X PATCH -H 'Content-Type: application/json' --data "$body") ;;
    dryrun-spread) tok=$dry_token url=$base/1000 want=dry_run args=(-X PATCH -H 'Content-Type: application/json' --data "$body") ;;
    *) echo "write_profile: unknown kind $1" >&2; exit 2 ;;
    esac
    local h
    h=$(curl -s -D- -o /dev/null "${args[@]}" -H "Authorization: Bearer $tok" "$url")
    grep -q '^HTTP/1.1 200' <<<"$h" && grep -qi "^X-Crmgate-Decision: $want" <<<"$h" ||
        { echo "write_profile: pre-flight $1 failed: $(head -1 <<<"$h")" >&2; exit 1; }
}
commits() {
    curl -s --unix-socket "$state/admin.sock" http://localhost/metrics |
        awk '$1 == "crmgate_audit_commits_total" { print $2 }'
}

printf 'wrk.method = "PATCH"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$body" >"$dir/patch.lua"
cat "$here/report.lua" >>"$dir/patch.lua"
cp "$here/report.lua" "$dir/get.lua"
# the spread kinds: every request a random one of the SPREAD contacts
{
    printf 'local body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$body"
    printf 'request = function()\n    return wrk.format("PATCH", "/hubspot/crm/v3/objects/contacts/" .. math.random(1000, %d), nil, body)\nend\n' $((999 + spread))
    cat "$here/report.lua"
} >"$dir/spread.lua"
hz=$(getconf CLK_TCK)
for k in $kinds; do
    setup_kind "$k"
    if [ "$mode" = rps ]; then
        script=$dir/get.lua
        [ "$k" = read ] || script=$dir/patch.lua
        [ "${k%-spread}" = "$k" ] || script=$dir/spread.lua
        wrk -t2 -c64 -d1s -s "$script" -H "Authorization: Bearer $tok" "$url" >/dev/null
        c0=$(commits)
        t0=$(awk '{ print $14 + $15 }' "/proc/$gate_pid/stat")
        w0=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$gate_pid/io")
        if [ -n "${PERFSTAT:-}" ]; then
            perf stat -x, -o "$dir/perf.$k" -p "$gate_pid" -e raw_syscalls:sys_enter \
                -e syscalls:sys_enter_fdatasync -e syscalls:sys_enter_pwrite64 \
                -e syscalls:sys_enter_futex -- sleep "$secs" &
            perf_pid=$!
        fi
        out=$(wrk -t2 -c64 -d"${secs}s" --latency -s "$script" -H "Authorization: Bearer $tok" "$url" | grep '^BENCH')
        [ -n "${PERFSTAT:-}" ] && wait "$perf_pid"
        t1=$(awk '{ print $14 + $15 }' "/proc/$gate_pid/stat")
        c1=$(commits)
        w1=$(awk '$1 == "write_bytes:" { print $2 }' "/proc/$gate_pid/io")
        echo "$k $out commits=$((c1 - c0)) ticks=$((t1 - t0)) wbytes=$((w1 - w0))" | awk -v hz="$hz" '{
            for (i = 2; i <= NF; i++) { split($i, a, "="); v[a[1]] = a[2] }
            s = v["duration_us"] / 1e6
            err = v["connect"] + v["read"] + v["write"] + v["timeout"]
            batch = v["commits"] > 0 ? v["requests"] / v["commits"] : 0
            cpu = v["ticks"] / hz * 1e6 / v["requests"]
            fmt = "%-14s %8.0f req/s  p99 %6.1f ms  non-2xx %d  socket errors %d"
            fmt = fmt "  commits/s %5.0f  req/commit %5.1f  crmgate CPU/req %6.1f us  disk KiB/req %5.1f\n"
            printf fmt, $1, v["requests"] / s, v["p99_us"] / 1000, v["status"], err, v["commits"] / s, batch, cpu, v["wbytes"] / 1024 / v["requests"]
        }'
        if [ -n "${PERFSTAT:-}" ]; then
            req=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out")
            awk -F, -v r="$req" '$1 + 0 > 0 { printf "    %-32s %5.2f per request\n", $3, $1 / r }' "$dir/perf.$k"
        fi
    else
        urls=()
        for _ in $(seq 200); do urls+=("$url"); done
        # one connection, its answers discarded (-o covers only the first URL: stdout too)
        curl -s -o /dev/null "${args[@]}" -H "Authorization: Bearer $tok" "${urls[@]}" >/dev/null # warm-up
        callgrind_control -z "$gate_pid" >/dev/null 2>&1
        for _ in $(seq $((n / 200))); do
            curl -s -o /dev/null "${args[@]}" -H "Authorization: Bearer $tok" "${urls[@]}" >/dev/null
        done
        callgrind_control -d "$k" "$gate_pid" >/dev/null 2>&1
        f=$(ls -t "$dir"/cg.out.* | head -1)
        ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
        printf '%-14s %8d instructions per request (%d requests)\n' "$k" $((ir / n)) "$n"
        if [ -n "${CG_OUT:-}" ]; then cp "$f" "$CG_OUT/callgrind.$k"; fi
    fi
done
