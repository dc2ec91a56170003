#!/usr/bin/env bash
# Checks the files in systemd/ the way systemd itself reads them, inside a throw-away root:
#   1. systemd-analyze verify on crmgate.service (any diagnostic fails the check: verify exits 0
#      even for unknown keys or unparsable values, which it only prints);
#   2. systemd-sysusers and systemd-tmpfiles on crmgate.sysusers / crmgate.tmpfiles;
#   3. the example config is JSON, and `crmgate serve --check` accepts it when a binary exists;
#   4. prints `systemd-analyze security --offline=true` for the unit (report only).
# The root mirrors `make install DESTDIR=$root`: the unit in /lib/systemd/system, the binary in
# /usr/sbin/crmgate (from $CRMGATE_BIN or ./crmgate; a placeholder executable when neither exists,
# since verify only checks that ExecStart= is executable), plus the host's unit files and
# /bin/kill so that dependencies (sysinit.target, ...) and ExecReload= resolve.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
src="$top/systemd"
bin="${CRMGATE_BIN:-$top/crmgate}"
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool not found (install package systemd)"; exit 1; }
done

root=$(mktemp -d "${TMPDIR:-/tmp}/crmgate-systemd.XXXXXX")
trap 'rm -rf "$root"' EXIT

# Merged-/usr layout, as Debian 12.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd" "$root/etc" \
    "$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d"
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp /usr/bin/kill "$root/usr/bin/kill"

if [ -x "$bin" ]; then
    install -m 0755 "$bin" "$root/usr/sbin/crmgate"
    echo "binary: $bin"
else
    printf '#!/bin/sh\nexit 1\n' >"$root/usr/sbin/crmgate"
    chmod 0755 "$root/usr/sbin/crmgate"
    echo "binary: none built yet ($bin); verifying the unit with a placeholder executable"
fi
install -m 0644 "$src/crmgate.service" "$root/lib/systemd/system/crmgate.service"
install -m 0644 "$src/crmgate.sysusers" "$root/usr/lib/sysusers.d/crmgate.conf"
install -m 0644 "$src/crmgate.tmpfiles" "$root/usr/lib/tmpfiles.d/crmgate.conf"

echo "== systemd-analyze verify crmgate.service"
set +e
out=$(systemd-analyze verify --man=no --root="$root" crmgate.service 2>&1)
rc=$?
set -e
[ -n "$out" ] && echo "$out"
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    fail "systemd-analyze verify (rc=$rc, diagnostics above)"
else
    echo "ok: no diagnostics"
fi

# Directives whose absence verify would not notice but crmgate relies on.
for want in 'Type=notify' 'ExecStart=/usr/sbin/crmgate serve -c /etc/crmgate/crmgate.json' \
    'ExecReload=/bin/kill -HUP $MAINPID' 'User=crmgate' 'Group=crmgate' 'StateDirectory=crmgate' \
    'StateDirectoryMode=0750' 'UMask=0007' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'LimitCORE=0'; do
    grep -qxF "$want" "$src/crmgate.service" || fail "crmgate.service lacks '$want'"
done
# The vault key comes in as $CREDENTIALS_DIRECTORY/vault.key (crmgate's default lookup).
grep -qxF 'LoadCredential=vault.key:crmgate-vault.key' "$src/crmgate.service" ||
    fail "crmgate.service does not load the vault key as \$CREDENTIALS_DIRECTORY/vault.key"
if grep -qE '^LoadCredential=[^:]+:/' "$src/crmgate.service"; then
    fail "LoadCredential= with an absolute path fails the start (243/CREDENTIALS) when the file is absent"
fi

echo "== systemd-sysusers crmgate.conf"
if out=$(systemd-sysusers --root="$root" crmgate.conf 2>&1); then
    echo "$out"
    grep -q '^crmgate:x:[0-9]*:[0-9]*:.*:/var/lib/crmgate:/usr/sbin/nologin$' "$root/etc/passwd" ||
        fail "sysusers did not create a nologin user crmgate with home /var/lib/crmgate"
    grep -q '^crmgate:x:[0-9]*:' "$root/etc/group" || fail "sysusers did not create group crmgate"
else
    echo "$out"
    fail "systemd-sysusers"
fi

echo "== systemd-tmpfiles --create crmgate.conf"
if out=$(systemd-tmpfiles --root="$root" --create crmgate.conf 2>&1); then
    [ -n "$out" ] && echo "$out"
    uid=$(awk -F: '$1 == "crmgate" { print $3 }' "$root/etc/passwd")
    got=$(stat -c '%a %u' "$root/var/lib/crmgate" 2>/dev/null || echo missing)
    if [ "$got" != "750 $uid" ]; then
        fail "tmpfiles: /var/lib/crmgate is '$got', want '750 $uid'"
    else
        echo "ok: /var/lib/crmgate 0750 crmgate"
    fi
    [ -z "$out" ] || fail "systemd-tmpfiles printed diagnostics"
else
    echo "$out"
    fail "systemd-tmpfiles"
fi

echo "== crmgate.json.example"
if node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' \
    "$src/crmgate.json.example"; then
    echo "ok: valid JSON"
else
    fail "crmgate.json.example is not valid JSON"
fi
if [ -x "$bin" ]; then
    # Against the real config parser; a temp state dir so nothing under /var is touched.
    state="$root/state"
    mkdir -p "$state"
    if out=$("$bin" serve --check -c "$src/crmgate.json.example" --state-dir "$state" --rules-dir "$top/rules" 2>&1); then
        echo "ok: crmgate serve --check: $out"
    else
        echo "$out"
        fail "crmgate serve --check rejects systemd/crmgate.json.example"
    fi
fi

# WatchdogSec= makes systemd kill a service that stops sending WATCHDOG=1: the binary must
# contain the message (sdnotify("WATCHDOG=1") from a timer at half of sdnotify_watchdog_usec()).
if [ -x "$bin" ] && grep -q '^WatchdogSec=' "$src/crmgate.service"; then
    if grep -aq 'WATCHDOG=1' "$bin"; then
        echo "ok: the binary sends WATCHDOG=1 (unit has $(grep '^WatchdogSec=' "$src/crmgate.service"))"
    else
        fail "crmgate.service sets WatchdogSec= but $bin never sends WATCHDOG=1: systemd would kill it every interval"
    fi
fi

# make install puts every file the installed unit names where it says (ExecStart=, the
# Documentation= file), for the default prefix and for PREFIX=/usr as a package would.
if [ -x "$bin" ]; then
    for prefix in /usr/local /usr; do
        dest="$root/install$prefix"
        if ! out=$(make -s -C "$top" install DESTDIR="$dest" PREFIX="$prefix" PROG="$bin" 2>&1); then
            echo "$out"
            fail "make install PREFIX=$prefix"
            continue
        fi
        unit="$dest$prefix/lib/systemd/system/crmgate.service"
        exe=$(sed -n 's|^ExecStart=\([^ ]*\).*|\1|p' "$unit")
        doc=$(sed -n 's|^Documentation=file:||p' "$unit")
        [ -x "$dest$exe" ] || fail "make install PREFIX=$prefix: ExecStart= names $exe, not installed"
        [ -n "$doc" ] && [ -f "$dest$doc" ] || fail "make install PREFIX=$prefix: Documentation= names '$doc', not installed"
        [ -x "$dest$exe" ] && [ -f "$dest$doc" ] && echo "ok: make install PREFIX=$prefix: $exe, $doc"
    done
fi

# The notify protocol end to end: the real binary, a real notify socket, real signals.
if [ -x "$bin" ]; then
    python3 "$top/tests/systemd/notify_test.py" "$bin" || fail "notify protocol (see above)"
fi

echo "== systemd-analyze security --offline=true crmgate.service (report only)"
set +e
sec=$(systemd-analyze security --offline=true --no-pager --root="$root" crmgate.service 2>&1)
set -e
echo "$sec" | grep -E '^✗' || true
echo "$sec" | grep -E 'Overall exposure level' || echo "$sec"

if [ "$fails" -ne 0 ]; then
    echo "systemd check: $fails failure(s)"
    exit 1
fi
echo "systemd check: OK"
