#!/usr/bin/env bash
# openssl_check.sh - crmgate's CA and minted leaves as the openssl CLI sees them:
# the name constraints are present and critical, minted chains verify, and a leaf for a
# host outside the constraints, signed with the CA key by openssl itself (bypassing
# crmgate's own refusal), fails verification because of the constraint.
#
# Uses "$CRMGATE_BIN ca ..." (default ./crmgate) when that binary has the ca subcommand;
# otherwise builds tests/certs/cli_driver.c, the same CLI code without the rest of crmgate.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/crmgate-openssl-check-XXXXXX)
trap 'rm -rf "$work"' EXIT
bin=${CRMGATE_BIN:-$root/crmgate}
pass=0

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); echo "ok - $*"; }

if ! [ -x "$bin" ] || ! "$bin" ca --help >/dev/null 2>&1; then
    bin=$work/crmgate
    cc -D_GNU_SOURCE -std=c11 -pthread -I"$root/certs" -Wall -Wextra -Werror -O2 \
        -o "$bin" "$root/tests/certs/cli_driver.c" "$root/certs/cli_ca.c" "$root/certs/ca.c" \
        "$root/certs/mint.c" -lssl -lcrypto
    echo "# using the CLI driver (crmgate has no ca subcommand yet)"
fi
ca=$work/ca

# --- ca init ---
"$bin" ca init --dir "$ca" >"$work/init.out"
[ "$(stat -c %a "$ca/ca.key")" = 600 ] || fail "ca.key mode $(stat -c %a "$ca/ca.key")"
[ "$(stat -c %a "$ca/ca.pem")" = 644 ] || fail "ca.pem mode $(stat -c %a "$ca/ca.pem")"
grep -q 'permits      api.hubapi.com, api.hubspot.com, salesforce.com, force.com' "$work/init.out" ||
    fail "init output: $(cat "$work/init.out")"
ok "ca init: ca.key 0600, ca.pem 0644"

before=$(sha256sum "$ca/ca.key" "$ca/ca.pem")
if "$bin" ca init --dir "$ca" 2>"$work/again.err"; then fail "second ca init succeeded"; fi
grep -q 'refusing to overwrite' "$work/again.err" || fail "second init: $(cat "$work/again.err")"
[ "$before" = "$(sha256sum "$ca/ca.key" "$ca/ca.pem")" ] || fail "second init changed the CA"
ok "ca init refuses to overwrite"

# --- the CA certificate ---
openssl x509 -in "$ca/ca.pem" -noout -text >"$work/ca.txt"
want_nc='            X509v3 Name Constraints: critical
                Permitted:
                  DNS:api.hubapi.com
                  DNS:api.hubspot.com
                  DNS:salesforce.com
                  DNS:force.com
                Excluded:
                  IP:0.0.0.0/0.0.0.0
                  IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0'
got_nc=$(grep -A8 'X509v3 Name Constraints' "$work/ca.txt")
[ "$got_nc" = "$want_nc" ] || fail "name constraints:
$got_nc"
ok "x509 -text: critical name constraints, 4 DNS subtrees permitted, all IPs excluded"
grep -A1 'Basic Constraints: critical' "$work/ca.txt" | grep -q 'CA:TRUE, pathlen:0' ||
    fail "basicConstraints"
grep -A1 'Key Usage: critical' "$work/ca.txt" | grep -q 'Certificate Sign, CRL Sign' ||
    fail "keyUsage"
grep -q 'ASN1 OID: prime256v1' "$work/ca.txt" || fail "not P-256"
grep -q 'Subject: O = crmgate, CN = crmgate local CA (' "$work/ca.txt" || fail "subject"
ok "x509 -text: CA:TRUE pathlen:0, keyCertSign+cRLSign (critical), P-256, subject"

# --- ca export ---
"$bin" ca export --dir "$ca" >"$work/export.pem"
cmp -s "$work/export.pem" "$ca/ca.pem" || fail "export pem differs from ca.pem"
"$bin" ca export --dir "$ca" --format der >"$work/export.der"
[ "$(openssl x509 -inform der -in "$work/export.der" -noout -fingerprint -sha256)" = \
  "$(openssl x509 -in "$ca/ca.pem" -noout -fingerprint -sha256)" ] || fail "export der"
! grep -q PRIVATE "$work/export.pem" || fail "export leaked a key"
ok "ca export: pem and der are the CA certificate"

# --- minted leaves verify ---
for host in api.hubapi.com api.hubspot.com acme.my.salesforce.com login.salesforce.com \
    test.salesforce.com na1.force.com; do
    "$bin" ca mint --dir "$ca" "$host" >"$work/leaf.pem"
    out=$(openssl verify -CAfile "$ca/ca.pem" -x509_strict -purpose sslserver \
        -verify_hostname "$host" "$work/leaf.pem" 2>&1) || fail "$host: $out"
    [ "$out" = "$work/leaf.pem: OK" ] || fail "$host: $out"
done
ok "openssl verify -CAfile: minted leaves for 6 CRM hosts verify (strict, sslserver, host)"
openssl x509 -in "$work/leaf.pem" -noout -text >"$work/leaf.txt"
! grep -q 'Subject Key Identifier' "$work/leaf.txt" || fail "leaf has an SKI"
grep -q 'Authority Key Identifier' "$work/leaf.txt" || fail "leaf lacks AKI"
grep -q 'DNS:na1.force.com' "$work/leaf.txt" || fail "leaf SAN"
grep -A1 'Basic Constraints: critical' "$work/leaf.txt" | grep -q 'CA:FALSE' || fail "leaf CA:FALSE"
grep -q 'TLS Web Server Authentication' "$work/leaf.txt" || fail "leaf EKU"
ok "leaf: SAN, CA:FALSE, serverAuth, AKI, no SKI"

for host in example.com evilsalesforce.com 127.0.0.1 '*.my.salesforce.com'; do
    if "$bin" ca mint --dir "$ca" "$host" >/dev/null 2>"$work/mint.err"; then
        fail "minted $host"
    fi
done
grep -q 'wildcard' "$work/mint.err" || fail "wildcard refusal: $(cat "$work/mint.err")"
"$bin" ca mint --dir "$ca" example.com >/dev/null 2>"$work/mint.err" || true
grep -q "host example.com is outside the CA's name constraints" "$work/mint.err" ||
    fail "example.com refusal reason: $(cat "$work/mint.err")"
ok "ca mint refuses example.com, evilsalesforce.com, 127.0.0.1, wildcards"

# --- leaves forged with the CA key by openssl itself fail because of the constraint ---
forge() { # name, subjectAltName value
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -addext "subjectAltName=$2" -keyout "$work/forged.key" -out "$work/forged.csr" 2>/dev/null
    openssl x509 -req -in "$work/forged.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" \
        -CAserial "$work/serial" -CAcreateserial -days 30 -copy_extensions copyall \
        -out "$work/forged.pem" 2>/dev/null
}
forge acme.my.salesforce.com DNS:acme.my.salesforce.com
openssl verify -CAfile "$ca/ca.pem" -verify_hostname acme.my.salesforce.com "$work/forged.pem" \
    >/dev/null 2>&1 || fail "control: an in-constraint leaf signed by openssl does not verify"
forge example.com DNS:example.com
if out=$(openssl verify -CAfile "$ca/ca.pem" "$work/forged.pem" 2>&1); then
    fail "example.com leaf verified: $out"
fi
echo "$out" | grep -q 'error 47 at 0 depth lookup: permitted subtree violation' ||
    fail "example.com: $out"
ok "openssl-signed example.com leaf: error 47 permitted subtree violation"
forge 127.0.0.1 IP:127.0.0.1
if out=$(openssl verify -CAfile "$ca/ca.pem" "$work/forged.pem" 2>&1); then
    fail "127.0.0.1 leaf verified: $out"
fi
echo "$out" | grep -q 'excluded subtree violation' || fail "127.0.0.1: $out"
ok "openssl-signed 127.0.0.1 leaf: excluded subtree violation"

echo "# $pass checks passed"
