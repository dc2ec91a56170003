#!/usr/bin/env python3
"""crmgate speaks systemd's notify protocol: READY=1 once serving, WATCHDOG=1 at half of
WATCHDOG_USEC while its workers run, RELOADING=1 (with MONOTONIC_USEC) then READY=1 on SIGHUP,
STOPPING=1 on SIGTERM, then exit 0. Run by tests/systemd/check.sh with the built binary."""
import os, signal, socket, subprocess, sys, tempfile, time

binary = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="crmgate-notify-")
path = os.path.join(tmp, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(5)
env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
env.pop("WATCHDOG_PID", None)
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--workers", "2",
                         "--state-dir", os.path.join(tmp, "state"),
                         "--rules-dir", os.path.join(top, "rules"),
                         "--upstream", "hubspot=http://127.0.0.1:9"],
                        env=env, stderr=subprocess.PIPE)
failures = []

def expect(what, deadline=5.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        if what(msg):
            return msg
    return None

try:
    if not expect(lambda m: "READY=1" in m.split("\n")):
        failures.append("no READY=1")
    pings = 0
    end = time.time() + 1.5
    while time.time() < end:
        m = expect(lambda m: True, deadline=end - time.time())
        if m and "WATCHDOG=1" in m.split("\n"):
            pings += 1
    # 1.5 s at one ping per 200 ms: about 7; allow for a loaded machine
    if pings < 3:
        failures.append(f"only {pings} WATCHDOG=1 pings in 1.5 s with WATCHDOG_USEC=400000")
    proc.send_signal(signal.SIGHUP)
    m = expect(lambda m: "RELOADING=1" in m)
    if not m or "MONOTONIC_USEC=" not in m:
        failures.append(f"SIGHUP: no RELOADING=1 with MONOTONIC_USEC (got {m!r})")
    if not expect(lambda m: "READY=1" in m.split("\n")):
        failures.append("SIGHUP: no READY=1 after the reload")
    proc.send_signal(signal.SIGTERM)
    if not expect(lambda m: "STOPPING=1" in m.split("\n")):
        failures.append("SIGTERM: no STOPPING=1")
    rc = proc.wait(timeout=10)
    if rc != 0:
        failures.append(f"exit status {rc} after SIGTERM")
finally:
    if proc.poll() is None:
        proc.kill()
    err = proc.stderr.read().decode(errors="replace")
    sock.close()
    os.unlink(path)

if failures:
    print("FAIL: notify protocol: " + "; ".join(failures))
    print(err[-2000:])
    sys.exit(1)
print(f"ok: notify protocol (READY, {pings} WATCHDOG pings, RELOADING/READY, STOPPING, exit 0)")
