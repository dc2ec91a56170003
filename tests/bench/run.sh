#!/usr/bin/env bash
# crmgate bench (`make bench`): one run, three targets side by side, all on loopback.
#   direct   wrk → nginx upstream serving a canned HubSpot contact
#   nginx    wrk → nginx reverse proxy (keep-alive pool, /hubspot/ stripped) → upstream
#   crmgate-passthrough  wrk → a bench-only build with policy compiled out → upstream
#   crmgate  wrk → crmgate serve (reverse, /hubspot/, policy enforced) → upstream
#   crmgate-https  the same over HTTPS (TLS 1.3, keep-alive: the steady state, not handshakes)
# crmgate runs with a rules file under which every property of the canned contact is readable
# (so the pre-flight body stays byte-identical): it classifies, decides, parses and filters every
# answer, and removes nothing. The policy micro-benchmark covers answers that lose fields.
# Each target: a pre-flight request (status 200 and the exact body), a warm-up, then a bounded
# wrk run. A run counts only if it had 0 non-2xx/3xx responses, 0 socket errors and every
# response carried at least the body's bytes: a proxy answering errors fast must not look fast.
# Prints a markdown table and writes it to tests/bench/out/latest.md. Exit 1 if any target was
# not clean or crmgate could not be benchmarked.
#
# Environment: BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_WORKERS (2: crmgate --workers and nginx proxy worker_processes), BENCH_UPSTREAM_WORKERS
# (1), CRMGATE_BIN (./crmgate).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${BENCH_SECONDS:-10}
warm=${BENCH_WARMUP:-2}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
workers=${BENCH_WORKERS:-2}
up_workers=${BENCH_UPSTREAM_WORKERS:-1}
bin=${CRMGATE_BIN:-$top/crmgate}
passthrough_bin=${CRMGATE_PASSTHROUGH_BIN:-}
token=pat-na1-bench-0000-0000-000000000000
path=/crm/v3/objects/contacts/1

for v in secs warm conns threads workers up_workers; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -gt 0 ] || { echo "bench: $v must be a positive integer" >&2; exit 2; }
done
[ "$secs" -le 300 ] || { echo "bench: BENCH_SECONDS is capped at 300" >&2; exit 2; }
for tool in nginx wrk curl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 2; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-bench.XXXXXX")
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

# Sum of VmRSS (KiB) of PID and its direct children (nginx: master + workers).
rss_kib() {
    local total=0 p kb
    for p in "$1" $(awk -v pp="$1" '$1 == "PPid:" && $2 == pp { split(FILENAME, a, "/"); print a[3] }' \
        /proc/[0-9]*/status 2>/dev/null); do
        kb=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

fill() {
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user nobody nogroup;"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|${3:-0}|g" -e "s|@UPSTREAM_PORT@|$up_port|g" \
        -e "s|@WORKERS@|$2|g" -e "s|@USER@|$user_line|g" "$here/$1" >"$dir/${1%.in}"
}

body_len=$(wc -c <"$here/contact.json")
cp "$here/contact.json" "$dir/contact.json"
chmod 0644 "$dir/contact.json"
up_port=$(free_port)
ngx_port=$(free_port)
gate_port=$(free_port)

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

# The policy every crmgate target runs with: one workspace, the contact's properties readable.
mkdir -p "$dir/rules"
cat >"$dir/rules/bench.json" <<'JSON'
{"workspace": "bench", "hubspot": {"objects": {"contacts": {"read": ["createdate", "email",
 "firstname", "hs_object_id", "lastmodifieddate", "lastname", "lifecyclestage"]}}}}
JSON
fingerprint=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
printf '{"rules_dir": "%s", "callers": [{"token_sha256": "%s", "workspace": "bench", "kind": "workflow"}]}\n' \
    "$dir/rules" "$fingerprint" >"$dir/crmgate.json"

# start_gate NAME BINARY PORT [EXTRA ARGS...]: sets gate_pid[NAME] or gate_note[NAME].
declare -A gate_pid gate_note
start_gate() {
    local name=$1 b=$2 port=$3 log="$dir/$1.log" p
    shift 3
    if [ ! -x "$b" ]; then
        gate_note[$name]="binary not found at $b (build it, or set CRMGATE_BIN / CRMGATE_PASSTHROUGH_BIN)"
        return
    fi
    mkdir -p "$dir/state-$name"
    "$b" serve -c "$dir/crmgate.json" --listen "127.0.0.1:$port" \
        --upstream "hubspot=http://127.0.0.1:$up_port" --state-dir "$dir/state-$name" \
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
start_gate crmgate "$bin" "$gate_port"
# A throw-away self-signed P-256 certificate for 127.0.0.1 (wrk does not verify).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$dir/https.key" -out "$dir/https.pem" 2>/dev/null
start_gate crmgate-https "$bin" "$https_port" --tls-cert "$dir/https.pem" --tls-key "$dir/https.key"
if [ -n "$passthrough_bin" ]; then
    start_gate passthrough "$passthrough_bin" "$pass_port"
else
    gate_note[passthrough]="no passthrough build (make bench builds one; set CRMGATE_PASSTHROUGH_BIN)"
fi

declare -A url pid_of label rps p50 p99 rss clean note
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

# Pre-flight: status 200 and byte-identical body, or the target is not benchmarked.
preflight() {
    local t=$1 code
    code=$(curl -s -k -o "$dir/preflight.$t" -w '%{http_code} %{content_type}' --max-time 5 \
        -H "Authorization: Bearer $token" "${url[$t]}" || true)
    if [ "${code%% *}" != 200 ] || ! cmp -s "$dir/preflight.$t" "$here/contact.json"; then
        note[$t]="pre-flight GET ${url[$t]} gave '$code' and $(wc -c <"$dir/preflight.$t" 2>/dev/null || echo 0) bytes, want 200 + the canned $body_len-byte body"
        return 1
    fi
    echo "pre-flight $t: $code, body identical ($body_len bytes)"
}

wrk_run() { # target duration logfile
    timeout $(($2 + 30)) wrk -t"$threads" -c"$conns" -d"${2}s" --latency -s "$here/report.lua" \
        -H "Authorization: Bearer $token" "${url[$1]}" >"$3" 2>&1
}

failures=0
for t in "${targets[@]}"; do
    clean[$t]=no
    if ! preflight "$t"; then
        echo "bench: $t: ${note[$t]}" >&2
        failures=$((failures + 1))
        continue
    fi
    echo "warm-up $t (${warm}s)"
    wrk_run "$t" "$warm" "$dir/warm.$t.log" || true
    echo "run $t (${secs}s, $threads threads, $conns connections)"
    if ! wrk_run "$t" "$secs" "$dir/wrk.$t.log"; then
        note[$t]="wrk failed: $(tail -n 3 "$dir/wrk.$t.log" | tr '\n' ' ')"
        failures=$((failures + 1))
        continue
    fi
    sed 's/^/    /' "$dir/wrk.$t.log" | grep -v '^    BENCH '
    line=$(grep '^BENCH ' "$dir/wrk.$t.log" || true)
    if [ -z "$line" ]; then
        note[$t]="no summary line from wrk"
        failures=$((failures + 1))
        continue
    fi
    declare -A m=()
    for kv in ${line#BENCH }; do
        m[${kv%%=*}]=${kv#*=}
    done
    rss[$t]=$(rss_kib "${pid_of[$t]}")
    rps[$t]=$(awk -v r="${m[requests]}" -v d="${m[duration_us]}" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
    p50[$t]=${m[p50_us]}
    p99[$t]=${m[p99_us]}
    sockerr=$((m[connect] + m[read] + m[write] + m[timeout]))
    per=$(( m[requests] > 0 ? m[bytes] / m[requests] : 0 ))
    problems=""
    [ "${m[requests]}" -gt 0 ] || problems+="no requests completed; "
    [ "${m[status]}" -eq 0 ] || problems+="${m[status]} non-2xx/3xx responses; "
    [ "$sockerr" -eq 0 ] || problems+="socket errors connect ${m[connect]} read ${m[read]} write ${m[write]} timeout ${m[timeout]}; "
    [ "$per" -ge "$body_len" ] || problems+="only $per bytes per response (body is $body_len); "
    if [ -z "$problems" ]; then
        clean[$t]=yes
        note[$t]="${m[requests]} requests, 0 non-2xx/3xx, 0 socket errors, $per bytes/response"
    else
        note[$t]="NOT CLEAN: $problems"
        failures=$((failures + 1))
    fi
    unset m
done

ms() { awk -v u="$1" 'BEGIN { printf "%.2f ms", u / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else printf "n/a" }'; }

mkdir -p "$here/out"
report="$here/out/latest.md"
{
    echo "# crmgate bench"
    echo
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) CPUs, $(nginx -v 2>&1 | sed 's/.*: //'), wrk -t$threads -c$conns -d${secs}s --latency after a ${warm}s warm-up. GET $path (canned $body_len-byte HubSpot contact). RSS: VmRSS after the run (nginx: master + workers)."
    echo
    echo "| target | req/s | p50 | p99 | RSS (MiB) | clean |"
    echo "|---|---:|---:|---:|---:|---|"
    for t in direct nginx passthrough crmgate crmgate-https; do
        if [ -n "${rps[$t]:-}" ]; then
            echo "| ${label[$t]} | ${rps[$t]} | $(ms "${p50[$t]}") | $(ms "${p99[$t]}") | $(mib "${rss[$t]}") | ${clean[$t]} |"
        else
            echo "| ${label[$t]} | — | — | — | — | not run |"
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
    echo "Checks (every wrk run must have 0 non-2xx/3xx responses and 0 socket errors):"
    for t in direct nginx passthrough crmgate crmgate-https; do
        if [ -n "${gate_note[$t]:-}" ]; then
            echo "- $t: not benchmarked: ${gate_note[$t]}"
        elif [ -n "${note[$t]:-}" ]; then
            echo "- $t: ${note[$t]}"
        fi
    done
} >"$report"

echo
cat "$report"
echo
echo "written to ${report#"$top"/}"
[ -z "${gate_note[crmgate]:-}" ] || failures=$((failures + 1))
[ -z "${gate_note[crmgate-https]:-}" ] || failures=$((failures + 1))
[ "$failures" -eq 0 ] || { echo "bench: $failures problem(s), see above" >&2; exit 1; }
