#!/usr/bin/env bash
# crmgate bench (`make bench`): one run, every target side by side, all on loopback.
#
# wrk (keep-alive, 64 connections) against:
#   direct   nginx upstream serving a canned HubSpot contact
#   nginx    nginx reverse proxy (keep-alive pool, /hubspot/ stripped) -> upstream
#   passthrough  a bench-only crmgate build with policy compiled out -> upstream
#   crmgate  crmgate serve (reverse, /hubspot/, policy enforced) -> upstream
#   crmgate-https  the same over HTTPS (TLS 1.3, keep-alive: the steady state, not handshakes)
#   writes   PATCH: the upstream alone (its ceiling), crmgate enforce (before-read GET, audit
#            intent commit, forward, outcome commit) and crmgate dry-run (before-read,
#            synthesized answer, commit), on the instance whose reads are measured above;
#            LMDB syncs counted with perf's syscall tracepoints during the same run, and the
#            bytes crmgate sent to the disk per write (write_bytes of /proc/PID/io); then both
#            writes spread over BENCH_SPREAD contacts at random, whose concurrent before-reads
#            fold into batch/reads of several records (the upstream answers all of them: at
#            least as much to parse as a real answer)
# tunnel_load (tests/bench/tunnel_load.c; wrk cannot CONNECT) against:
#   the upstream directly (plain and TLS: the driver's own ceiling), nginx's HTTPS reverse proxy
#   (the same nginx as the wrk row, TLS 1.3: what a lean C proxy does on this machine), crmgate's HTTPS reverse
#   listener, crmgate's forward listener (CONNECT once, then keep-alive requests in the tunnel),
#   mitmdump the same way, and new tunnels per second (CONNECT + full TLS handshake + one
#   request + close) with a warm leaf cache (one host) and a cold one (a new host each time).
# Plus the median leaf mint time (mint_bench). Every proxy row also reports the proxy's own CPU
# time per request (utime + stime of all its threads and worker processes over the run, from
# /proc): on 2 shared cores req/s says who won the cores, CPU per request says what each request
# costs.
#
# crmgate runs with rules under which every field of the canned answers is readable (so the
# pre-flight body stays byte-identical): it classifies, decides, parses and filters every answer.
# Each target: a pre-flight request (status and exact body, TLS chains verified), a warm-up, then
# a bounded run. A run counts only if it had 0 non-2xx/3xx responses and 0 socket errors (and for
# reads the full body every time): a proxy answering errors fast must not look fast.
#
# Isolation: as root, the whole bench re-runs itself inside a throw-away network namespace whose
# only interface is lo (its /etc/netns hosts file maps the CRM hosts to 127.0.0.1), removed at the
# end: no process of the bench can reach past this machine. Without root, mitmdump is skipped.
#
# Prints markdown tables and writes them to tests/bench/out/latest.md. Exit 1 if any target was
# not clean or crmgate could not be benchmarked; missed targets are reported, not fatal.
#
# Environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_WORKERS (2: crmgate --workers and nginx proxy worker_processes), BENCH_UPSTREAM_WORKERS
# (1), BENCH_SPREAD (8), BENCH_HANDSHAKE_SECONDS (5), BENCH_HANDSHAKE_CONNECTIONS (16), CRMGATE_BIN (./crmgate),
# CRMGATE_PASSTHROUGH_BIN, BENCH_DRIVER (build/tests/bench/tunnel_load), BENCH_MINT_BENCH
# (build/tests/bench/mint_bench), BENCH_NO_NETNS (set: do not use a namespace).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
spread=${BENCH_SPREAD:-8}
workers=${BENCH_WORKERS:-2}
up_workers=${BENCH_UPSTREAM_WORKERS:-1}
bin=${CRMGATE_BIN:-$top/crmgate}
passthrough_bin=${CRMGATE_PASSTHROUGH_BIN:-}
token=pat-na1-bench-0000-0000-000000000000
path=/crm/v3/objects/contacts/1

hs_secs=${BENCH_HANDSHAKE_SECONDS:-5}
hs_conns=${BENCH_HANDSHAKE_CONNECTIONS:-16}
driver=${BENCH_DRIVER:-$top/build/tests/bench/tunnel_load}
mint_bench=${BENCH_MINT_BENCH:-$top/build/tests/bench/mint_bench}
dry_token=pat-na1-bench-dry0-0000-000000000000
sf_id=003000000000001AAA
sf_path="/services/data/v62.0/sobjects/Contact/$sf_id?fields=LastName,Email"
patch_path=/crm/v3/objects/contacts/2
patch_body='{"properties":{"firstname":"Ada Bench"}}'

for v in secs warm conns threads workers up_workers hs_secs hs_conns spread; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
[ "$secs" -le 300 ] || { echo "bench: BENCH_SECONDS is capped at 300" >&2; exit 2; }
[ "$spread" -le 999 ] || { echo "bench: BENCH_SPREAD is capped at 999 (contacts 1000..1999)" >&2; exit 2; }
for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 2; }
done

# Re-run inside a network namespace with only lo (see the top); removed however the run ends.
# shellcheck source=tests/lo_netns.sh
. "$here/../lo_netns.sh"
[ -n "${BENCH_NO_NETNS:-}" ] ||
    lo_netns_reexec cgb CRMGATE_BENCH_NETNS $'127.0.0.1 localhost\n127.0.0.1 api.hubapi.com api.hubspot.com\n::1 localhost\n' "$0" "$@"

dir=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-bench.XXXXXX")
# A second store on tmpfs, where a sync costs nothing: writes there show crmgate's own CPU cost.
shm_state=""
[ -d /dev/shm ] && shm_state=$(mktemp -d /dev/shm/crmgate-bench-state.XXXXXX)
chmod 0755 "$dir" # nginx workers drop to nobody when started as root
pids=()

cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$shm_state"
    if [ -n "${BENCH_KEEP:-}" ]; then
        echo "bench: kept $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS PID: until URL answers at all, or fail if PID died.
wait_http() {
    local i
    for i in $(seq $(($2 * 10))); do
        kill -0 "$3" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    return 1
}

# PID and its direct children (nginx: master + workers), one a line.
proc_tree() {
    echo "$1"
    awk -v pp="$1" '$1 == "PPid:" && $2 == pp { split(FILENAME, a, "/"); print a[3] }' \
        /proc/[0-9]*/status 2>/dev/null
}

# proc_sum PID FILE AWK-PROGRAM: the sum over proc_tree PID of what the program prints from
# /proc/P/FILE (a process gone meanwhile counts 0).
proc_sum() {
    local total=0 p v
    for p in $(proc_tree "$1"); do
        v=$(awk "$3" "/proc/$p/$2" 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# Sum of VmRSS (KiB) of PID and its direct children.
rss_kib() { proc_sum "$1" status '$1 == "VmRSS:" { print $2 }'; }

# CPU time (clock ticks: utime + stime, every thread) of PID and its direct children, to turn a
# run into the proxy's own CPU microseconds per request.
hz=$(getconf CLK_TCK)
cpu_ticks() { proc_sum "$1" stat '{ print $14 + $15 }'; }
# Bytes PID and its direct children sent to the storage layer (write_bytes of /proc/P/io: for
# crmgate, LMDB's dirty pages; 0 on tmpfs, which has no storage layer).
disk_bytes() { proc_sum "$1" io '$1 == "write_bytes:" { print $2 }'; }
declare -A disk_kib
# us_per_req TICKS REQUESTS: CPU microseconds per request
us_per_req() { awk -v t="$1" -v r="$2" -v hz="$hz" 'BEGIN { if (r > 0) printf "%.1f", t / hz * 1e6 / r }'; }

fill() {
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|${3:-0}|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
        -e "s|@UPSTREAM_TLS_PORT@|$up_tls_port|g" -e "s|@PROXY_TLS_PORT@|$ngx_tls_port|g" \
        -e "s|@WORKERS@|$2|g" -e "s|@USER@|$user_line|g" "$here/$1" >"$dir/${1%.in}"
}

body_len=$(wc -c <"$here/contact.json")
cp "$here/contact.json" "$dir/contact.json"
chmod 0644 "$dir/contact.json"
up_port=$(free_port)
up_tls_port=$(free_port)
ngx_port=$(free_port)
ngx_tls_port=$(free_port)
gate_port=$(free_port)

# A throw-away self-signed P-256 certificate for 127.0.0.1 (crmgate's HTTPS reverse listener and
# the upstream's TLS port; wrk does not verify, tunnel_load's pre-flight does).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/https.key" -out "$dir/https.pem" 2>/dev/null
chmod 0644 "$dir/https.key" # read by nginx workers (nobody); a throw-away key

# The upstream's answers: the canned contact (GET), contact 2 for writes (GET and PATCH, via
# `return`, which nginx answers for any method), and a Salesforce Contact for handshake runs.
python3 "$here/upstream_answers.py" "$dir" "$sf_id" "$spread"
sf_len=$(wc -c <"$dir/sf-contact.json")

fill nginx-upstream.conf.in "$up_workers"
fill nginx-proxy.conf.in "$workers" "$ngx_port"
nginx -t -q -p "$dir" -e "$dir/nginx-t.log" -c "$dir/nginx-upstream.conf"
nginx -t -q -p "$dir" -e "$dir/nginx-t.log" -c "$dir/nginx-proxy.conf"

nginx -p "$dir" -e "$dir/upstream.stderr.log" -c "$dir/nginx-upstream.conf" &
up_pid=$!
pids+=("$up_pid")
nginx -p "$dir" -e "$dir/proxy.stderr.log" -c "$dir/nginx-proxy.conf" &
ngx_pid=$!
pids+=("$ngx_pid")
wait_http "http://127.0.0.1:$up_port/" 10 "$up_pid" || { echo "bench: upstream nginx did not start" >&2; cat "$dir"/upstream*.log >&2; exit 1; }
wait_http "http://127.0.0.1:$ngx_port/" 10 "$ngx_pid" || { echo "bench: proxy nginx did not start" >&2; cat "$dir"/proxy*.log >&2; exit 1; }

# The policy every crmgate target runs with: the contact's properties readable, firstname
# writable; a Salesforce Contact readable (handshake runs); and a dry_run twin for writes. The
# agents call with their own tokens (registered fingerprints), so the workspaces allow it.
mkdir -p "$dir/rules"
for ws in bench benchdry; do
    mode=enforce
    [ "$ws" = benchdry ] && mode=dry_run
    cat >"$dir/rules/$ws.json" <<JSON
{"workspace": "$ws", "mode": "$mode", "allow_passthrough": true, "hubspot": {"objects": {"contacts": {"read": ["createdate", "email",
 "firstname", "hs_object_id", "lastmodifieddate", "lastname", "lifecyclestage"],
 "write": {"firstname": {}}}}},
 "salesforce": {"objects": {"Contact": {"read": ["LastName", "Email"]}}}}
JSON
done
fingerprint=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
dry_fingerprint=$(printf '%s' "$dry_token" | sha256sum | cut -d' ' -f1)
printf '{"rules_dir": "%s", "callers": [{"token_sha256": "%s", "workspace": "bench", "kind": "workflow"}, {"token_sha256": "%s", "workspace": "benchdry", "kind": "workflow"}]}\n' \
    "$dir/rules" "$fingerprint" "$dry_fingerprint" >"$dir/crmgate.json"

# start_gate NAME BINARY PORT [EXTRA ARGS...]: sets gate_pid[NAME] or gate_note[NAME].
declare -A gate_pid gate_note gate_state
start_gate() {
    local name=$1 b=$2 port=$3 log="$dir/$1.log" p
    shift 3
    if [ ! -x "$b" ]; then
        gate_note[$name]="binary not found at $b (build it, or set CRMGATE_BIN / CRMGATE_PASSTHROUGH_BIN)"
        return
    fi
    local st=${gate_state[$name]:-$dir/state-$name}
    mkdir -p "$st"
    "$b" serve -c "$dir/crmgate.json" --listen "127.0.0.1:$port" \
        --upstream "hubspot=http://127.0.0.1:$up_port" \
        --upstream "salesforce=http://127.0.0.1:$up_port" --state-dir "$st" \
        --workers "$workers" --log-level notice "$@" 2>"$log" &
    p=$!
    pids+=("$p")
    for _ in $(seq 100); do
        grep -q "reverse listener on 127.0.0.1:$port" "$log" && break
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if grep -q "reverse listener on 127.0.0.1:$port" "$log"; then
        gate_pid[$name]=$p
    else
        gate_note[$name]="did not log 'reverse listener on 127.0.0.1:$port' within 10 s: $(tail -n 5 "$log" | tr '\n' ' ')"
    fi
}
pass_port=$(free_port)
https_port=$(free_port)
fwd_port=$(free_port)
shm_port=$(free_port)
start_gate crmgate "$bin" "$gate_port"
if [ -n "$shm_state" ]; then
    gate_state[crmgate-shm]=$shm_state
    start_gate crmgate-shm "$bin" "$shm_port"
fi
# The HTTPS instance also has the forward listener: the MITM and HTTPS rows share a process.
"$bin" ca init --dir "$dir/ca" >/dev/null
start_gate crmgate-https "$bin" "$https_port" --tls-cert "$dir/https.pem" --tls-key "$dir/https.key" \
    --forward-listen "127.0.0.1:$fwd_port" --ca-dir "$dir/ca"
if [ -n "$passthrough_bin" ]; then
    start_gate passthrough "$passthrough_bin" "$pass_port"
else
    gate_note[passthrough]="no passthrough build (make bench builds one; set CRMGATE_PASSTHROUGH_BIN)"
fi

# mitmdump, the peer for interception: same upstream (its addon sends every request there).
mitm_port=$(free_port)
mitm_note=""
if [ -z "${CRMGATE_BENCH_NETNS:-}" ]; then
    mitm_note="not run: mitmdump runs only inside the bench's network namespace (run make bench as root)"
elif ! command -v mitmdump >/dev/null; then
    mitm_note="not run: mitmdump not installed (scripts/deps.sh bench installs Debian's mitmproxy)"
else
    BENCH_UPSTREAM_PORT=$up_port mitmdump -q --listen-host 127.0.0.1 --listen-port "$mitm_port" \
        --set confdir="$dir/mitm" --set connection_strategy=lazy --set upstream_cert=false \
        -s "$here/mitm_upstream.py" >"$dir/mitmdump.log" 2>&1 &
    mitm_pid=$!
    pids+=("$mitm_pid")
    for _ in $(seq 150); do
        [ -f "$dir/mitm/mitmproxy-ca-cert.pem" ] && (echo >"/dev/tcp/127.0.0.1/$mitm_port") 2>/dev/null && break
        kill -0 "$mitm_pid" 2>/dev/null || break
        sleep 0.1
    done
    (echo >"/dev/tcp/127.0.0.1/$mitm_port") 2>/dev/null ||
        mitm_note="not run: mitmdump did not start: $(tail -n 3 "$dir/mitmdump.log" | tr '\n' ' ')"
fi

declare -A url pid_of label rps p50 p99 rss cpu clean note script tok minb
targets=(direct nginx)
url[direct]="http://127.0.0.1:$up_port$path"
pid_of[direct]=$up_pid
label[direct]="direct (nginx upstream, $up_workers worker)"
url[nginx]="http://127.0.0.1:$ngx_port/hubspot$path"
pid_of[nginx]=$ngx_pid
label[nginx]="nginx proxy ($workers workers)"
for t in passthrough crmgate crmgate-https; do
    [ -n "${gate_pid[$t]:-}" ] || continue
    targets+=("$t")
    pid_of[$t]=${gate_pid[$t]}
done
url[passthrough]="http://127.0.0.1:$pass_port/hubspot$path"
url[crmgate]="http://127.0.0.1:$gate_port/hubspot$path"
label[passthrough]="crmgate, policy compiled out ($workers workers)"
label[crmgate]="crmgate, policy enforced ($workers workers)"
url[crmgate-https]="https://127.0.0.1:$https_port/hubspot$path"
label[crmgate-https]="crmgate over HTTPS, policy enforced ($workers workers)"

# Writes: PATCH contact 2 (firstname), to the upstream alone and through crmgate.
{
    printf 'wrk.method = "PATCH"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$patch_body"
    cat "$here/report.lua"
} >"$dir/patch.lua"
write_targets=(direct-patch)
url[direct-patch]="http://127.0.0.1:$up_port$patch_path"
pid_of[direct-patch]=$up_pid
label[direct-patch]="PATCH, direct (the upstream's own ceiling)"
if [ -n "${gate_pid[crmgate]:-}" ]; then
    write_targets+=(audited dryrun)
    url[audited]="http://127.0.0.1:$gate_port/hubspot$patch_path"
    url[dryrun]=${url[audited]}
    pid_of[audited]=${gate_pid[crmgate]}
    pid_of[dryrun]=${gate_pid[crmgate]}
    tok[dryrun]=$dry_token
    label[audited]="PATCH through crmgate, enforce: audited write"
    label[dryrun]="PATCH through crmgate, dry_run workspace"
    # the same writes spread over $spread contacts: concurrent writes' before-reads fold into
    # batch/reads of several records, not one record's read
    write_targets+=(audited-spread dryrun-spread)
    url[audited-spread]="http://127.0.0.1:$gate_port/hubspot/crm/v3/objects/contacts/1000"
    url[dryrun-spread]=${url[audited-spread]}
    pid_of[audited-spread]=${gate_pid[crmgate]}
    pid_of[dryrun-spread]=${gate_pid[crmgate]}
    tok[dryrun-spread]=$dry_token
    label[audited-spread]="the audited write, over $spread contacts at random"
    label[dryrun-spread]="the dry-run write, over $spread contacts at random"
fi
if [ -n "${gate_pid[crmgate-shm]:-}" ]; then
    write_targets+=(audited-shm dryrun-shm)
    url[audited-shm]="http://127.0.0.1:$shm_port/hubspot$patch_path"
    url[dryrun-shm]=${url[audited-shm]}
    pid_of[audited-shm]=${gate_pid[crmgate-shm]}
    pid_of[dryrun-shm]=${gate_pid[crmgate-shm]}
    tok[dryrun-shm]=$dry_token
    label[audited-shm]="the same audited write, store on tmpfs (syncs free: CPU only)"
    label[dryrun-shm]="the same dry-run write, store on tmpfs"
fi
for t in direct-patch audited dryrun audited-shm dryrun-shm audited-spread dryrun-spread; do
    script[$t]="$dir/patch.lua"
    minb[$t]=1
done
{
    printf 'local body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' "$patch_body"
    printf 'request = function()\n    return wrk.format("PATCH", "/hubspot/crm/v3/objects/contacts/" .. math.random(1000, %d), nil, body)\nend\n' $((999 + spread))
    cat "$here/report.lua"
} >"$dir/spread.lua"
script[audited-spread]="$dir/spread.lua"
script[dryrun-spread]="$dir/spread.lua"

# What one durable sync costs on the disk under the store: 100 synchronous 4 KiB writes.
disk_sync_ms=$(dd if=/dev/zero of="$dir/sync-probe" bs=4k count=100 oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1) * 1000 / 100 }')
rm -f "$dir/sync-probe"

# Pre-flight: status 200 and byte-identical body (reads), or the expected decision (writes).
preflight() {
    local t=$1 code want
    if [ -n "${script[$t]:-}" ]; then
        code=$(curl -s -o "$dir/preflight.$t" -D "$dir/preflight-h.$t" -w '%{http_code}' --max-time 5 \
            -X PATCH -H 'Content-Type: application/json' --data "$patch_body" \
            -H "Authorization: Bearer ${tok[$t]:-$token}" "${url[$t]}" || true)
        want=""
        [ "${t%%-*}" = audited ] && want="X-Crmgate-Decision: allow"
        [ "${t%%-*}" = dryrun ] && want="X-Crmgate-Decision: dry_run"
        if [ "$code" != 200 ] || { [ -n "$want" ] && ! grep -qi "^$want" "$dir/preflight-h.$t"; } ||
            { [ "${t%%-*}" = audited ] && ! grep -qi '^X-Crmgate-Audit-Id: [0-9]' "$dir/preflight-h.$t"; }; then
            note[$t]="pre-flight PATCH ${url[$t]} gave $code, want 200${want:+ with $want}: $(head -c 300 "$dir/preflight.$t")"
            return 1
        fi
        echo "pre-flight $t: $code${want:+, $want}"
        return 0
    fi
    code=$(curl -s -k -o "$dir/preflight.$t" -w '%{http_code} %{content_type}' --max-time 5 \
        -H "Authorization: Bearer $token" "${url[$t]}" || true)
    if [ "${code%% *}" != 200 ] || ! cmp -s "$dir/preflight.$t" "$here/contact.json"; then
        note[$t]="pre-flight GET ${url[$t]} gave '$code' and $(wc -c <"$dir/preflight.$t" 2>/dev/null || echo 0) bytes, want 200 + the canned $body_len-byte body"
        return 1
    fi
    echo "pre-flight $t: $code, body identical ($body_len bytes)"
}

wrk_run() { # target duration logfile
    timeout $(($2 + 30)) wrk -t"$threads" -c"$conns" -d"${2}s" --latency -s "${script[$1]:-$here/report.lua}" \
        -H "Authorization: Bearer ${tok[$1]:-$token}" "${url[$1]}" >"$3" 2>&1
}

# LMDB syncs during a run: perf counts the sync system calls of the crmgate process (tracepoints,
# no slowdown). Falls back to nothing (the table says so) where perf cannot.
declare -A syncs
sync_events=syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_msync
perf_ok=no
if command -v perf >/dev/null && perf stat -x, -e "$sync_events" -- true >/dev/null 2>&1; then
    perf_ok=yes
fi

failures=0
run_wrk_target() {
    local t=$1 line sockerr per problems kv perf_pid=""
    clean[$t]=no
    if ! preflight "$t"; then
        echo "bench: $t: ${note[$t]}" >&2
        failures=$((failures + 1))
        return
    fi
    echo "warm-up $t (${warm}s)"
    wrk_run "$t" "$warm" "$dir/warm.$t.log" || true
    echo "run $t (${secs}s, $threads threads, $conns connections)"
    if [ "$perf_ok" = yes ] && [ -n "${script[$t]:-}" ] && [ "$t" != direct-patch ]; then
        perf stat -x, -o "$dir/perf.$t" -e "$sync_events" -p "${pid_of[$t]}" -- sleep "$secs" &
        perf_pid=$!
    fi
    local ticks0 ticks1 wb0 wb1
    ticks0=$(cpu_ticks "${pid_of[$t]}")
    wb0=$(disk_bytes "${pid_of[$t]}")
    if ! wrk_run "$t" "$secs" "$dir/wrk.$t.log"; then
        note[$t]="wrk failed: $(tail -n 3 "$dir/wrk.$t.log" | tr '\n' ' ')"
        failures=$((failures + 1))
        return
    fi
    ticks1=$(cpu_ticks "${pid_of[$t]}")
    wb1=$(disk_bytes "${pid_of[$t]}")
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        syncs[$t]=$(awk -F, '$3 ~ /sys_enter/ && $1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }' "$dir/perf.$t")
    fi
    sed 's/^/    /' "$dir/wrk.$t.log" | grep -v '^    BENCH '
    line=$(grep '^BENCH ' "$dir/wrk.$t.log" || true)
    if [ -z "$line" ]; then
        note[$t]="no summary line from wrk"
        failures=$((failures + 1))
        return
    fi
    declare -A m=()
    for kv in ${line#BENCH }; do
        m[${kv%%=*}]=${kv#*=}
    done
    rss[$t]=$(rss_kib "${pid_of[$t]}")
    cpu[$t]=$(us_per_req $((ticks1 - ticks0)) "${m[requests]}")
    disk_kib[$t]=$(awk -v b=$((wb1 - wb0)) -v r="${m[requests]}" 'BEGIN { printf "%.1f", (r > 0 ? b / 1024 / r : 0) }')
    rps[$t]=$(awk -v r="${m[requests]}" -v d="${m[duration_us]}" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    p50[$t]=${m[p50_us]}
    p99[$t]=${m[p99_us]}
    sockerr=$((m[connect] + m[read] + m[write] + m[timeout]))
    per=$((m[requests] > 0 ? m[bytes] / m[requests] : 0))
    problems=""
    [ "${m[requests]}" -gt 0 ] || problems+="no requests completed; "
    [ "${m[status]}" -eq 0 ] || problems+="${m[status]} non-2xx/3xx responses; "
    [ "$sockerr" -eq 0 ] || problems+="socket errors connect ${m[connect]} read ${m[read]} write ${m[write]} timeout ${m[timeout]}; "
    [ "$per" -ge "${minb[$t]:-$body_len}" ] || problems+="only $per bytes per response (body is $body_len); "
    if [ -z "$problems" ]; then
        clean[$t]=yes
        note[$t]="${m[requests]} requests, 0 non-2xx/3xx, 0 socket errors, $per bytes/response"
        if [ -n "${syncs[$t]:-}" ]; then
            note[$t]+=", ${syncs[$t]} sync calls (perf, during the ${secs}s run)"
        fi
    else
        note[$t]="NOT CLEAN: $problems"
        failures=$((failures + 1))
    fi
}

for t in "${targets[@]}" "${write_targets[@]}"; do
    run_wrk_target "$t"
done

# ---- tunnel_load targets ----
auth="Authorization: Bearer $token"
hs_get=(--path "$path" --header "$auth" --expect-body-bytes "$body_len")
sf_get=(--path "$sf_path" --header "$auth" --expect-body-bytes "$sf_len")
declare -A dlabel dclean dnote drps dp50 dp99 dcpu dca dsecs dpid dproxy dproxy_us
dtargets=()
add_driver() { # name label ca seconds proxy-pid args... (proxy-pid "": none, the upstream itself)
    local n=$1
    dlabel[$n]=$2
    dca[$n]=$3
    dsecs[$n]=$4
    dpid[$n]=$5
    shift 5
    local -n a="da_${n//-/_}"
    a=("$@")
    dtargets+=("$n")
}
add_driver d-direct "upstream direct, plain HTTP (the driver's ceiling)" "" "$secs" "" \
    --target "127.0.0.1:$up_port" "${hs_get[@]}"
add_driver d-direct-tls "upstream direct over TLS 1.3, keep-alive (the driver's ceiling)" "$dir/https.pem" "$secs" "" \
    --target "127.0.0.1:$up_tls_port" --tls "${hs_get[@]}"
add_driver d-nginx-https "nginx HTTPS reverse proxy (2 workers), keep-alive" "$dir/https.pem" "$secs" "$ngx_pid" \
    --target "127.0.0.1:$ngx_tls_port" --tls --path "/hubspot$path" --header "$auth" --expect-body-bytes "$body_len"
if [ -n "${gate_pid[crmgate-https]:-}" ]; then
    add_driver d-https "crmgate HTTPS reverse, keep-alive" "$dir/https.pem" "$secs" "${gate_pid[crmgate-https]}" \
        --target "127.0.0.1:$https_port" --tls --path "/hubspot$path" --header "$auth" --expect-body-bytes "$body_len"
    add_driver d-mitm "crmgate forward MITM, warm keep-alive tunnels" "$dir/ca/ca.pem" "$secs" "${gate_pid[crmgate-https]}" \
        --proxy "127.0.0.1:$fwd_port" --tls --host api.hubapi.com "${hs_get[@]}"
fi
if [ -z "$mitm_note" ]; then
    add_driver d-mitmdump "mitmdump MITM, warm keep-alive tunnels" "$dir/mitm/mitmproxy-ca-cert.pem" "$secs" "$mitm_pid" \
        --proxy "127.0.0.1:$mitm_port" --tls --host api.hubapi.com "${hs_get[@]}"
fi
add_driver hs-direct "upstream direct over TLS 1.3, new connection each (the driver's handshake ceiling)" \
    "$dir/https.pem" "$hs_secs" "" --target "127.0.0.1:$up_tls_port" --tls --new-conn \
    --connections "$hs_conns" "${sf_get[@]}"
if [ -n "${gate_pid[crmgate-https]:-}" ]; then
    add_driver hs-warm "crmgate new tunnels, warm leaf cache (one host)" "$dir/ca/ca.pem" "$hs_secs" "${gate_pid[crmgate-https]}" \
        --proxy "127.0.0.1:$fwd_port" --tls --host bench.my.salesforce.com --new-conn \
        --connections "$hs_conns" "${sf_get[@]}"
    add_driver hs-cold "crmgate new tunnels, cold leaf cache (a new host each)" "$dir/ca/ca.pem" "$hs_secs" "${gate_pid[crmgate-https]}" \
        --proxy "127.0.0.1:$fwd_port" --tls --host-pattern 'c%u.my.salesforce.com' --new-conn \
        --connections "$hs_conns" "${sf_get[@]}"
fi
if [ -z "$mitm_note" ]; then
    add_driver hs-mitmdump "mitmdump new tunnels, warm (one host)" "$dir/mitm/mitmproxy-ca-cert.pem" "$hs_secs" "$mitm_pid" \
        --proxy "127.0.0.1:$mitm_port" --tls --host bench.my.salesforce.com --new-conn \
        --connections "$hs_conns" "${sf_get[@]}"
fi

driver_line() { # logfile key: the value of key= in tunnel_load's BENCH line
    awk -v k="$2" '/^BENCH / { for (i = 2; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }' "$1"
}
run_driver_target() {
    local t=$1 log="$dir/drv.$1.log" req dur errs bad
    local -n a="da_${t//-/_}"
    dclean[$t]=no
    if [ ! -x "$driver" ]; then
        dnote[$t]="tunnel_load not built at $driver"
        failures=$((failures + 1))
        return
    fi
    # Pre-flight: one request, the chain and host name verified, the exact body length.
    if ! timeout 30 "$driver" "${a[@]}" --connections 1 --threads 1 --max-requests 1 --seconds 10 \
        ${dca[$t]:+--cafile "${dca[$t]}"} >"$dir/drv-pre.$t.log" 2>&1; then
        dnote[$t]="pre-flight failed: $(tr '\n' ' ' <"$dir/drv-pre.$t.log")"
        echo "bench: $t: ${dnote[$t]}" >&2
        failures=$((failures + 1))
        return
    fi
    echo "pre-flight $t: ok${dca[$t]:+ (chain verified)}"
    echo "warm-up $t (${warm}s)"
    timeout $((warm + 30)) "$driver" "${a[@]}" --threads "$threads" --seconds "$warm" \
        $([[ " ${a[*]} " == *" --connections "* ]] || echo --connections "$conns") >/dev/null 2>&1 || true
    echo "run $t (${dsecs[$t]}s)"
    local ticks0=0 ticks1=0
    [ -z "${dpid[$t]}" ] || ticks0=$(cpu_ticks "${dpid[$t]}")
    timeout $((dsecs[$t] + 30)) "$driver" "${a[@]}" --threads "$threads" --seconds "${dsecs[$t]}" \
        $([[ " ${a[*]} " == *" --connections "* ]] || echo --connections "$conns") >"$log" 2>&1 || true
    [ -z "${dpid[$t]}" ] || ticks1=$(cpu_ticks "${dpid[$t]}")
    sed 's/^/    /' "$log"
    req=$(driver_line "$log" requests)
    if [ -z "$req" ]; then
        dnote[$t]="no summary line from tunnel_load: $(tail -n 2 "$log" | tr '\n' ' ')"
        failures=$((failures + 1))
        return
    fi
    dur=$(driver_line "$log" duration_us)
    errs=$(driver_line "$log" errors)
    bad=$(driver_line "$log" bad)
    drps[$t]=$(awk -v r="$req" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    dp50[$t]=$(driver_line "$log" p50_us)
    dp99[$t]=$(driver_line "$log" p99_us)
    dcpu[$t]=$(awk -v c="$(driver_line "$log" cpu_us)" -v d="$dur" 'BEGIN { printf "%.0f%%", 100 * c / d }')
    dproxy[$t]="—"
    if [ -n "${dpid[$t]}" ]; then
        dproxy_us[$t]=$(us_per_req $((ticks1 - ticks0)) "$req")
        dproxy[$t]="${dproxy_us[$t]} µs"
    fi
    if [ "$req" -gt 0 ] && [ "$errs" -eq 0 ] && [ "$bad" -eq 0 ]; then
        dclean[$t]=yes
        dnote[$t]="$req requests, 0 errors, 0 unexpected answers"
    else
        dnote[$t]="NOT CLEAN: $req requests, $errs errors, $bad unexpected answers: $(sed -n 's/.*first_error=//p' "$log")"
        failures=$((failures + 1))
    fi
}
for t in "${dtargets[@]}"; do
    run_driver_target "$t"
done

# The median leaf mint time (and what a cache hit costs), from the mint micro-benchmark.
mint_line=""
hit_line=""
if [ -x "$mint_bench" ]; then
    "$mint_bench" >"$dir/mint.log" 2>&1 || true
    sed 's/^/    /' "$dir/mint.log"
    mint_line=$(awk '/^mint leaf/ { for (i = 1; i < NF; i++) if ($i == "median") print $(i + 1) }' "$dir/mint.log")
    hit_line=$(awk '/^cache hit/ { for (i = 1; i < NF; i++) if ($i == "median") print $(i + 1) }' "$dir/mint.log")
fi

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else printf "n/a" }'; }
# target NAME VALUE BASE MIN: "**0.93×** (target ≥ 0.8×: met)"
target() {
    if [ -z "$2" ] || [ -z "$3" ]; then
        echo "n/a (not measured)"
        return
    fi
    awk -v a="$2" -v b="$3" -v m="$4" 'BEGIN { r = a / b; printf "**%.2f×** (target ≥ %s×: %s)", r, m, (r >= m ? "met" : "MISSED") }'
}

mkdir -p "$here/out"
report="$here/out/latest.md"
{
    echo "# crmgate bench"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, $(nginx -v 2>&1 | sed 's/.*: //'), wrk -t$threads -c$conns -d${secs}s --latency after a ${warm}s warm-up. GET $path (canned $body_len-byte HubSpot contact). RSS: VmRSS after the run (nginx: master + workers).${CRMGATE_BENCH_NETNS:+ Everything ran inside network namespace $CRMGATE_BENCH_NETNS (lo only).}"
    echo
    echo "| target | req/s | p50 | p99 | CPU/req | RSS (MiB) | clean |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for t in direct nginx passthrough crmgate crmgate-https; do
        if [ -n "${rps[$t]:-}" ]; then
            echo "| ${label[$t]} | ${rps[$t]} | $(ms "${p50[$t]}") | $(ms "${p99[$t]}") | ${cpu[$t]} µs | $(mib "${rss[$t]}") | ${clean[$t]} |"
        else
            echo "| ${label[$t]} | — | — | — | — | — | not run |"
        fi
    done
    echo
    if [ -n "${rps[crmgate]:-}" ]; then
        echo "| ratio | req/s | p50 | p99 | RSS |"
        echo "|---|---:|---:|---:|---:|"
        for base in nginx passthrough direct; do
            [ -n "${rps[$base]:-}" ] || continue
            echo "| crmgate / $base | $(ratio "${rps[crmgate]}" "${rps[$base]}") | $(ratio "${p50[crmgate]}" "${p50[$base]}") | $(ratio "${p99[crmgate]}" "${p99[$base]}") | $(ratio "${rss[crmgate]}" "${rss[$base]}") |"
        done
        if [ -n "${rps[crmgate-https]:-}" ]; then
            echo "| crmgate over HTTPS / crmgate over HTTP | $(ratio "${rps[crmgate-https]}" "${rps[crmgate]}") | $(ratio "${p50[crmgate-https]}" "${p50[crmgate]}") | $(ratio "${p99[crmgate-https]}" "${p99[crmgate]}") | $(ratio "${rss[crmgate-https]}" "${rss[crmgate]}") |"
        fi
        echo
    fi
    echo "Writes (wrk, PATCH $patch_path {\"properties\":{\"firstname\":...}}, same connections; syncs = fdatasync + fsync + msync calls of the crmgate process counted by perf during the run):"
    echo
    echo "| writes | writes/s | p50 | p99 | CPU/write | syncs/s | syncs/write | disk KiB/write | clean |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    for t in direct-patch audited dryrun audited-spread dryrun-spread audited-shm dryrun-shm; do
        if [ -n "${rps[$t]:-}" ]; then
            sps="—"
            spw="—"
            if [ -n "${syncs[$t]:-}" ]; then
                sps=$(awk -v s="${syncs[$t]}" -v d="$secs" 'BEGIN { printf "%.0f", s / d }')
                spw=$(awk -v s="${syncs[$t]}" -v d="$secs" -v r="${rps[$t]}" 'BEGIN { printf "%.3f", (r > 0 ? s / d / r : 0) }')
            fi
            echo "| ${label[$t]} | ${rps[$t]} | $(ms "${p50[$t]}") | $(ms "${p99[$t]}") | ${cpu[$t]} µs | $sps | $spw | ${disk_kib[$t]:-—} | ${clean[$t]} |"
        else
            echo "| ${label[$t]} | — | — | — | — | — | — | — | not run |"
        fi
    done
    echo
    echo "The disk under the store: one synchronous 4 KiB write (dd oflag=dsync) takes ${disk_sync_ms:-?} ms. An LMDB commit syncs twice (data, then meta page), one at a time; an audited write waits for two commits (intent, outcome), a dry-run write for one, so with $conns connections writes/s stays under about $conns / (commits waited × 2 syncs × sync time), whatever the CPU does."
    echo
    echo "Through the load driver (tunnel_load, $threads threads; keep-alive rows $conns connections for ${secs}s, handshake rows $hs_conns connections for ${hs_secs}s, each a full TLS 1.3 handshake without resumption; driver CPU = the driver's own CPU time over the run, 100% = one core):"
    echo
    echo "| target | req/s | p50 | p99 | proxy CPU/req | driver CPU | clean |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for t in d-direct d-direct-tls d-nginx-https d-https d-mitm d-mitmdump hs-direct hs-warm hs-cold hs-mitmdump; do
        [ -n "${dlabel[$t]:-}" ] || continue
        if [ -n "${drps[$t]:-}" ]; then
            echo "| ${dlabel[$t]} | ${drps[$t]} | $(ms "${dp50[$t]}") | $(ms "${dp99[$t]}") | ${dproxy[$t]} | ${dcpu[$t]} | ${dclean[$t]} |"
        else
            echo "| ${dlabel[$t]} | — | — | — | — | — | not run |"
        fi
    done
    [ -z "$mitm_note" ] || echo "| mitmdump | — | — | — | — | — | $mitm_note |"
    echo
    echo "Leaf minting: median ${mint_line:-?} µs per leaf (mint_bench: build + ECDSA sign, shared P-256 key), a cache hit ${hit_line:-?} µs."
    echo
    echo "| ratio | value |"
    echo "|---|---:|"
    echo "| forward MITM / HTTPS reverse (same driver, warm keep-alive) | $(target x "${drps[d-mitm]:-}" "${drps[d-https]:-}" 0.8) |"
    echo "| crmgate MITM / mitmdump MITM (same driver, warm keep-alive) | $(target x "${drps[d-mitm]:-}" "${drps[d-mitmdump]:-}" 50) |"
    echo "| mitmdump / crmgate MITM, proxy CPU per request (work done per core; mitmdump uses one core at most, crmgate every core its workers get) | $(ratio "${dproxy_us[d-mitmdump]:-0}" "${dproxy_us[d-mitm]:-0}") |"
    echo "| 50 × mitmdump's req/s / nginx HTTPS reverse proxy's req/s (what the MITM target asks of this machine) | $(awk -v m="${drps[d-mitmdump]:-0}" -v n="${drps[d-nginx-https]:-0}" 'BEGIN { if (n > 0) printf "%.2f×", 50 * m / n; else printf "n/a" }') |"
    echo "| crmgate HTTPS reverse / nginx HTTPS reverse proxy (same driver) | $(ratio "${drps[d-https]:-0}" "${drps[d-nginx-https]:-0}") |"
    echo "| crmgate audited write / crmgate read, CPU per request (wrk) | $(ratio "${cpu[audited]:-0}" "${cpu[crmgate]:-0}") |"
    echo "| crmgate dry-run write / crmgate read, CPU per request (wrk) | $(ratio "${cpu[dryrun]:-0}" "${cpu[crmgate]:-0}") |"
    echo "| audited writes / crmgate reads (wrk) | $(target x "${rps[audited]:-}" "${rps[crmgate]:-}" 0.4) |"
    echo "| dry-run writes / crmgate reads (wrk) | $(target x "${rps[dryrun]:-}" "${rps[crmgate]:-}" 0.8) |"
    echo "| audited writes / the upstream's own PATCH ceiling | $(ratio "${rps[audited]:-0}" "${rps[direct-patch]:-0}") |"
    echo "| audited writes over $spread contacts / crmgate reads | $(ratio "${rps[audited-spread]:-0}" "${rps[crmgate]:-0}") |"
    echo "| dry-run writes over $spread contacts / crmgate reads | $(ratio "${rps[dryrun-spread]:-0}" "${rps[crmgate]:-0}") |"
    echo "| audited writes, store on tmpfs / crmgate reads | $(ratio "${rps[audited-shm]:-0}" "${rps[crmgate]:-0}") |"
    echo "| dry-run writes, store on tmpfs / crmgate reads | $(ratio "${rps[dryrun-shm]:-0}" "${rps[crmgate]:-0}") |"
    echo "| new tunnels/s, cold / warm leaf cache | $(ratio "${drps[hs-cold]:-0}" "${drps[hs-warm]:-0}") |"
    echo "| crmgate new tunnels / mitmdump new tunnels (warm) | $(ratio "${drps[hs-warm]:-0}" "${drps[hs-mitmdump]:-0}") |"
    echo "| crmgate MITM (driver) / the driver's own TLS ceiling | $(ratio "${drps[d-mitm]:-0}" "${drps[d-direct-tls]:-0}") |"
    echo
    echo "Checks (every run must have 0 non-2xx/3xx responses and 0 socket errors):"
    for t in direct nginx passthrough crmgate crmgate-https crmgate-shm direct-patch audited dryrun audited-spread dryrun-spread audited-shm dryrun-shm; do
        if [ -n "${gate_note[$t]:-}" ]; then
            echo "- $t: not benchmarked: ${gate_note[$t]}"
        elif [ -n "${note[$t]:-}" ]; then
            echo "- $t: ${note[$t]}"
        fi
    done
    for t in "${dtargets[@]}"; do
        echo "- $t: ${dnote[$t]:-not run}"
    done
    [ "$perf_ok" = yes ] || echo "- syncs: perf cannot count syscall tracepoints here; sync columns empty"
    [ -z "$mitm_note" ] || echo "- mitmdump: $mitm_note"
} >"$report"

echo
cat "$report"
echo
echo "written to ${report#"$top"/}"
[ -z "${gate_note[crmgate]:-}" ] || failures=$((failures + 1))
[ -z "${gate_note[crmgate-https]:-}" ] || failures=$((failures + 1))
[ "$failures" -eq 0 ] || { echo "bench: $failures problem(s), see above" >&2; exit 1; }
