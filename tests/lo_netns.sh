# tests/lo_netns.sh: sourced by tests/bench/run.sh and tests/soak/run.sh.
#
# lo_netns_reexec NAME MARKER HOSTS SCRIPT [ARGS...]: as root, run SCRIPT ARGS again inside a
# throw-away network namespace NAME-PID whose only interface is lo, with HOSTS as its
# /etc/netns hosts file and MARKER=namespace in its environment; remove the namespace however the
# run ends, and exit with the run's status. Returns at once (nothing done) when MARKER is already
# set (the inner run), without root, or without ip: the caller then runs where it is.
lo_netns_reexec() {
    local name=$1 marker=$2 hosts=$3 script=$4 ns rc=0
    shift 4
    [ -z "${!marker:-}" ] && [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null || return 0
    ns=$name-$$
    ip netns add "$ns"
    # shellcheck disable=SC2064 # the namespace's name is fixed now
    trap "ip netns del '$ns' 2>/dev/null || true; rm -rf '/etc/netns/$ns'" EXIT
    trap 'exit 130' INT TERM
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    printf '%s' "$hosts" >"/etc/netns/$ns/hosts"
    echo "$(basename "$(dirname "$script")"): running inside network namespace $ns (interfaces: $(ip -n "$ns" -brief link | awk '{print $1}' | tr '\n' ' '))"
    ip netns exec "$ns" env "$marker=$ns" bash "$script" "$@" || rc=$?
    exit "$rc"
}
