'use strict';
/*
 * Shared e2e harness: starts the fake CRM (tests/fakecrm/server.js) and crmgate as child
 * processes on loopback, waits until each is ready, and kills every child when the test
 * process exits (normally, on failure, or on a signal) so `node --test` never hangs.
 *
 *   const { startFake, startCrmgate, startStack } = require('./harness.js');
 *   const stack = await startStack();          // fake + crmgate in front of it
 *   ... stack.hubspotBase, stack.fake.seed({hubspot: {...}}), stack.fake.state() ...
 *   await stack.stop();
 *
 * crmgate binary: $CRMGATE_BIN or <repo>/crmgate. Set CRMGATE_LOG=1 to echo crmgate's stderr.
 * crmgate runs at --log-level debug unless a test sets a level ($CRMGATE_E2E_LOG_LEVEL picks
 * another), so the secret sweep sees every line it can write.
 *
 * Secret sweep (secret_sweep.js): every crmgate started here is swept once it has ended (at
 * stop(), which then throws on a hit, or at exit, which then fails the test file): no secret
 * in its log or its store. noteSecret(kind, value) names one more secret to look for;
 * noteCliSecrets(args, input, result) records what a CLI run was given and checks its output.
 *
 * Admin API: startCrmgate() returns adminSocket (the unix socket it logged), adminUrl (when
 * admin.listen is configured) and admin(method, path, body, headers) to call it over the socket.
 *
 * HTTPS reverse listener: makeTestCerts() makes a throwaway CA and a 127.0.0.1/localhost server
 * certificate; startCrmgate({tls: {cert, key}}) (or startStack({gate: {tls}})) passes
 * --tls-cert/--tls-key and returns https:// URLs.
 *
 * Network namespaces: startFake({netns}) and startCrmgate({netns}) run the child with
 * `ip netns exec NAME` (the caller creates and removes the namespace); the fake's control API is
 * then reached through a Unix socket relay. startCrmgate({transparent}) starts the transparent
 * (iptables REDIRECT) listener.
 */

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const https = require('node:https');
const zlib = require('node:zlib');
const sweep = require('./secret_sweep.js');

const REPO = path.resolve(__dirname, '..', '..');
const FAKE_SERVER = path.join(REPO, 'tests', 'fakecrm', 'server.js');
/* valgrind (make valgrind sets CRMGATE_SLOW) starts crmgate 20-50x slower. */
const READY_TIMEOUT_MS = process.env.CRMGATE_SLOW ? 60000 : 10000;

/* ---------------- child process bookkeeping ---------------- */

const children = new Set();
const tmpdirs = new Set();
/* every crmgate started, until the secret sweep has looked at it (secret_sweep.js) */
const unswept = new Set();

function killAll() {
  for (const c of children) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
  children.clear();
  /* crmgates no test stopped (left running, killed by the test, or failed to start): swept
   * now, and a hit fails the test file */
  for (const g of [...unswept]) {
    const hits = sweepGate(g);
    if (hits.length) {
      process.stderr.write(`${sweep.failure(g.what, hits).message}\n`);
      process.exitCode = 1;
    }
  }
  for (const d of tmpdirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  tmpdirs.clear();
}

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => { killAll(); process.exit(128 + (os.constants.signals[sig] || 1)); });
}

function track(proc) {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

function exited(proc) {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/*
 * Children are unref'd once ready (so a forgotten stop() cannot keep the test process alive;
 * the 'exit' hook kills them), which means a wait on them must hold the event loop itself.
 */
function detach(proc) {
  proc.unref();
  for (const s of [proc.stdout, proc.stderr]) if (s && typeof s.unref === 'function') s.unref();
}

/* Resolves with the exit code (or the signal name) once the process has ended. */
function waitExit(proc) {
  if (exited(proc)) return Promise.resolve(proc.exitCode !== null ? proc.exitCode : proc.signalCode);
  const keepAlive = setInterval(() => {}, 1000);
  return new Promise((resolve) => proc.once('exit', (code, signal) => {
    clearInterval(keepAlive);
    resolve(code !== null ? code : signal);
  }));
}

/* Sends a signal, waits up to `graceMs`, then SIGKILLs. Resolves with the exit code or signal. */
async function stopProc(proc, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  if (exited(proc)) return waitExit(proc);
  const done = waitExit(proc);
  proc.kill(signal);
  const timer = setTimeout(() => { if (!exited(proc)) proc.kill('SIGKILL'); }, graceMs);
  try { return await done; } finally { clearTimeout(timer); }
}

/* Waits until `re` matches the accumulated text of a stream; rejects on exit or timeout. */
function waitForLine(proc, stream, re, what, captured) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) { cleanup(); resolve(m); }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`${what} exited (${code !== null ? `code ${code}` : signal}) before it was ready.\n--- output ---\n${captured()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms (waiting for ${re}).\n--- output ---\n${captured()}`));
    }, READY_TIMEOUT_MS);
    function cleanup() {
      clearTimeout(timer);
      stream.off('data', onData);
      proc.off('exit', onExit);
    }
    stream.on('data', onData);
    proc.on('exit', onExit);
  });
}

/* Like waitForLine, but matches `re` against text() (all output captured so far, not only new data). */
function waitForText(proc, stream, text, re, what, captured) {
  const now = re.exec(text());
  if (now) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const onData = () => {
      const m = re.exec(text());
      if (m) { cleanup(); resolve(m); }
    };
    const onExit = (code, signal) => {
      cleanup();
      reject(new Error(`${what} exited (${code !== null ? `code ${code}` : signal}) before it was ready.\n--- output ---\n${captured()}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what} not ready after ${READY_TIMEOUT_MS} ms (waiting for ${re}).\n--- output ---\n${captured()}`));
    }, READY_TIMEOUT_MS);
    function cleanup() {
      clearTimeout(timer);
      stream.off('data', onData);
      proc.off('exit', onExit);
    }
    stream.on('data', onData);
    proc.on('exit', onExit);
  });
}

/* ---------------- network namespaces ---------------- */

/*
 * opts.netns = NAME runs a child inside an existing network namespace (`ip netns exec NAME ...`,
 * which execs in place: the child's pid is the program's own, so signals reach it directly).
 */
function nsSpawn(netns, cmd, args, options) {
  if (!netns) return spawn(cmd, args, options);
  return spawn('ip', ['netns', 'exec', netns, cmd, ...args], options);
}

/*
 * A relay from a Unix socket (a filesystem path: reachable from every network namespace) to
 * 127.0.0.1:port inside `netns`, so the test process can talk to a server that only listens on
 * the namespace's loopback. Resolves {socketPath, proc}.
 */
const RELAY_SCRIPT = `
const net = require('node:net');
const [sock, port] = process.argv.slice(1);
const server = net.createServer((c) => {
  const u = net.connect(Number(port), '127.0.0.1');
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
  c.pipe(u).pipe(c);
});
server.listen(sock, () => process.stdout.write('relay ready\\n'));
process.stdin.on('end', () => process.exit(0)); /* exits with its parent */
process.stdin.resume();
`;
async function startNsRelay(netns, port) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-relay-'));
  tmpdirs.add(dir);
  const socketPath = path.join(dir, 'relay.sock');
  const proc = track(nsSpawn(netns, process.execPath, ['-e', RELAY_SCRIPT, socketPath, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  await waitForLine(proc, proc.stdout, /relay ready\n/, `relay into netns ${netns}`, () => out);
  detach(proc);
  if (proc.stdin && typeof proc.stdin.unref === 'function') proc.stdin.unref();
  return { socketPath, proc };
}

/*
 * A throw-away network namespace with only lo (up), so nothing inside can leave the machine:
 * netnsUnavailable() says why one cannot be made (not root, no ip), else false;
 * makeNetns(prefix, hosts) creates PREFIX-<random> with /etc/netns/NAME/hosts holding the
 * lines given, and returns {name, remove()}; remove() is idempotent and also runs at exit.
 */
function netnsUnavailable() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespace)';
  try { execFileSync('ip', ['-V'], { stdio: 'ignore' }); } catch { return 'ip (iproute2) not installed'; }
  return false;
}

function makeNetns(prefix, hosts) {
  const name = `${prefix}-${require('node:crypto').randomBytes(5).toString('hex')}`;
  const etc = `/etc/netns/${name}`;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    try { execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }); } catch { /* already gone */ }
    try { fs.rmSync(etc, { recursive: true, force: true }); } catch { /* best effort */ }
  };
  process.on('exit', remove);
  execFileSync('ip', ['netns', 'add', name], { stdio: 'ignore' });
  try {
    fs.mkdirSync(etc, { recursive: true });
    fs.writeFileSync(`${etc}/hosts`, hosts.map((l) => `${l}\n`).join(''));
    execFileSync('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' });
  } catch (e) {
    remove();
    throw e;
  }
  return { name, remove };
}

/* ---------------- tiny JSON client for the control API ---------------- */

/* One HTTP(S) request with a JSON body; resolves {status, headers, body (parsed when JSON)}. */
function requestJson(url, { method = 'GET', body, headers = {}, socketPath } = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const payload = body === undefined ? null : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {
      method,
      ...(socketPath ? { socketPath } : {}), /* a Unix socket relay into a network namespace */
      headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...headers },
      rejectUnauthorized: false, /* the fake's own test certificate; loopback only */
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      /* A connection cut mid-body must fail the call, not leave it pending forever. */
      res.on('error', reject);
      res.on('aborted', () => reject(Object.assign(new Error('response aborted mid-body'), { code: 'ECONNRESET' })));
      res.on('end', () => {
        let raw = Buffer.concat(chunks);
        if (res.headers['content-encoding'] === 'gzip' && raw.length) raw = zlib.gunzipSync(raw);
        const text = raw.toString('utf8');
        let parsed = text;
        if (/json/.test(res.headers['content-type'] || '') && text) parsed = JSON.parse(text);
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/*
 * A raw HTTP request to crmgate's plain listener at port: body is an object (sent as JSON), a
 * string or a Buffer (sent as is), with a JSON Content-Type unless headers say otherwise;
 * token goes in Authorization. Resolves {status, headers, text, json (undefined if not JSON)}.
 */
function rawRequest(port, method, p, { token, body, headers = {} } = {}) {
  const payload = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, method, path: p,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}), accept: 'application/json',
        ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
        ...headers,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

async function control(base, method, p, body, socketPath) {
  const r = await requestJson(`${base}${p}`, { method, body, socketPath });
  if (r.status !== 200) throw new Error(`fakecrm control ${method} ${p} -> ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/* ---------------- the secret sweep (secret_sweep.js) ---------------- */

let sweepTmp = null;
let fakeCount = 0;

/* A directory for the fakes' credential files, removed at exit. */
function sweepDir() {
  if (!sweepTmp) {
    sweepTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-sweep-'));
    tmpdirs.add(sweepTmp);
  }
  return sweepTmp;
}

/* Sweeps one crmgate once (its process has ended); returns the hits. */
function sweepGate(g) {
  if (!unswept.has(g)) return [];
  unswept.delete(g);
  return sweep.sweep({ what: g.what, text: g.text(), stateDir: g.stateDir });
}

/*
 * The log level every crmgate runs with unless its test sets one (config log_level or
 * --log-level): $CRMGATE_E2E_LOG_LEVEL, else debug, so the sweep sees every line crmgate can
 * write.
 */
function e2eLogLevel() {
  return process.env.CRMGATE_E2E_LOG_LEVEL || 'debug';
}

/* ---------------- the fake CRM ---------------- */

/*
 * Starts tests/fakecrm/server.js on a free loopback port.
 * opts: {tls, cert, key, gzip (default true), port (default 0: a free one; a fixed port, 443 say,
 * only inside a namespace the test made), netns: NAME (run it inside that network namespace,
 * on the namespace's 127.0.0.1; the control calls then go through a Unix socket relay, and
 * `url` is the address inside the namespace)}.
 */
async function startFake(opts = {}) {
  const args = [FAKE_SERVER, '--port', String(opts.port || 0), '--host', '127.0.0.1'];
  if (opts.tls) args.push('--tls', '--cert', opts.cert, '--key', opts.key);
  if (opts.gzip === false) args.push('--no-gzip');
  /* the credentials it sees, for the secret sweep */
  const credentialsFile = path.join(sweepDir(), `fake-${process.pid}-${++fakeCount}.jsonl`);
  sweep.noteFakeCredentialsFile(credentialsFile);
  const proc = track(nsSpawn(opts.netns, process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FAKECRM_EXIT_WITH_PARENT: '1', FAKECRM_CREDENTIALS_FILE: credentialsFile },
  }));
  let out = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; if (process.env.FAKECRM_LOG) process.stderr.write(d); });
  const m = await waitForLine(proc, proc.stdout, /fakecrm listening on (https?:\/\/[0-9.]+:(\d+))\n/, 'fakecrm', () => out);
  const url = m[1];
  detach(proc);
  let relay = null;
  if (opts.netns) {
    try { relay = await startNsRelay(opts.netns, Number(m[2])); } catch (e) { await stopProc(proc, { graceMs: 2000 }); throw e; }
  }
  const sp = relay ? relay.socketPath : undefined;
  return {
    url,
    port: Number(m[2]),
    proc,
    output: () => out,
    reset: () => control(url, 'POST', '/_fake/reset', undefined, sp),
    seed: (obj) => control(url, 'POST', '/_fake/seed', obj, sp),
    requests: (since) => control(url, 'GET', `/_fake/requests${since ? `?since=${since}` : ''}`, undefined, sp),
    clearRequests: () => control(url, 'DELETE', '/_fake/requests', undefined, sp),
    state: () => control(url, 'GET', '/_fake/state', undefined, sp),
    fault: (spec) => control(url, 'POST', '/_fake/faults', spec, sp),
    clearFaults: () => control(url, 'DELETE', '/_fake/faults', undefined, sp),
    revokeToken: (token) => control(url, 'POST', '/_fake/tokens/revoke', { token }, sp),
    options: (o) => control(url, 'POST', '/_fake/options', o, sp),
    stop: async () => {
      if (relay) await stopProc(relay.proc, { graceMs: 1000 });
      return stopProc(proc, { graceMs: 2000 });
    },
  };
}

/* ---------------- crmgate ---------------- */

function crmgateBinary() {
  return process.env.CRMGATE_BIN || path.join(REPO, 'crmgate');
}

/* True when the crmgate binary exists, so suites can skip the gate path until it is built. */
function crmgateAvailable() {
  try { fs.accessSync(crmgateBinary(), fs.constants.X_OK); return true; } catch { return false; }
}

/*
 * Starts `crmgate serve` on 127.0.0.1:0 with a fresh state directory.
 * opts: {upstreams: {hubspot?, salesforce?}, args: [], env: {}, config: object written as JSON
 * and passed with --config, workers (default 2), tls: {cert, key} (PEM file paths: passed as
 * --tls-cert/--tls-key, and the returned url is https://; a config with a tls key also gives an
 * https:// url), forward: true | {caDir, listen, via: 'flags' (default) | 'config'} (the forward
 * HTTPS_PROXY listener on 127.0.0.1:0 with --forward-listen/--ca-dir, or the config's
 * {"forward": {"listen", "ca_dir"}}; the CA is made with `crmgate ca init --dir` unless caDir
 * already holds one; waits for "forward listener on ADDR:PORT" and adds forwardPort, forwardUrl,
 * caDir and caCert (caDir/ca.pem) to the result), transparent: {caDir, listen (default
 * 127.0.0.1:0), via: 'flags' (default) | 'config'} (the transparent listener for iptables REDIRECT
 * with --transparent-listen/--ca-dir, or the config's {"transparent": {"listen", "ca_dir"}}; the
 * same CA handling as forward, shared with it when both are asked for; waits for "transparent
 * listener on ADDR:PORT" and adds transparentPort, caDir and caCert), netns: NAME (run crmgate
 * inside that network namespace: `ip netns exec NAME crmgate serve ...`; its ports are then the
 * namespace's)}.
 */
/*
 * crmgate enforces policy on every call, so each crmgate the harness starts gets rules and
 * registered callers. Unless a test brings its own (opts.rules: {file: workspaceObject},
 * opts.callers: [{token, workspace, user?, kind?}] or a config with rules_dir/callers), it gets
 * OPEN_RULES: one workspace that may read and write every object and field (read-only system
 * fields stay unwritable: no rule can change that), for the tokens the suites use.
 */
const OPEN_ACTIONS = { create: true, update: true, upsert: true, delete: true, merge: true,
  gdpr_delete: true, associate: true, dissociate: true };
const OPEN_CRM = { schema_read: true, auth: true, objects: { '*': { read: '*', write: '*', actions: OPEN_ACTIONS } } };
const OPEN_RULES = { 'e2e-open.json': { workspace: 'e2e-open', hubspot: OPEN_CRM, salesforce: OPEN_CRM } };
const OPEN_TOKENS = [
  'pat-na1-00000000-0000-0000-0000-000000000001',
  'pat-na1-11111111-2222-3333-4444-555555555555',
  '00DHs0000000001!AQtesttoken',
  '00DHs0000000001!AQsdktesttoken',
];

function sha256(text) {
  return require('node:crypto').createHash('sha256').update(text).digest('hex');
}

/* Writes rules files into dir/rules and returns the config keys that point crmgate at them. */
function policyConfig(dir, opts) {
  const rules = opts.rules || OPEN_RULES;
  const callers = opts.callers || OPEN_TOKENS.map((token) => ({ token, workspace: 'e2e-open' }));
  const rulesDir = path.join(dir, 'rules');
  fs.mkdirSync(rulesDir, { recursive: true });
  /* Registered token fingerprints are agents' own CRM tokens: their workspaces allow that
   * (allow_passthrough) unless a test's rules say otherwise. */
  const passthrough = new Set(callers.map((c) => c.workspace));
  for (const [file, ws] of Object.entries(rules)) {
    const out = passthrough.has(ws.workspace) && ws.allow_passthrough === undefined ? { ...ws, allow_passthrough: true } : ws;
    fs.writeFileSync(path.join(rulesDir, file), JSON.stringify(out, null, 2));
  }
  return {
    rules_dir: rulesDir,
    callers: callers.map((c) => ({ token_sha256: sha256(c.token), workspace: c.workspace,
      ...(c.user ? { user: c.user } : {}), kind: c.kind || 'workflow' })),
  };
}

async function startCrmgate(opts = {}) {
  const bin = crmgateBinary();
  if (!fs.existsSync(bin)) throw new Error(`crmgate binary not found at ${bin} (build it with make, or set CRMGATE_BIN)`);
  /* opts.stateDir: reuse a state directory (a restart keeps its store); else a fresh one */
  const stateDir = opts.stateDir || fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-'));
  tmpdirs.add(stateDir);
  const args = ['serve', '--listen', '127.0.0.1:0', '--workers', String(opts.workers || 2), '--state-dir', stateDir];
  {
    const config = { ...(opts.config || {}) };
    if (config.rules_dir === undefined && config.callers === undefined) Object.assign(config, policyConfig(stateDir, opts));
    const file = path.join(stateDir, 'config.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2));
    args.push('--config', file);
  }
  for (const [crm, url] of Object.entries(opts.upstreams || {})) if (url) args.push('--upstream', `${crm}=${url}`);
  if (opts.tls) args.push('--tls-cert', opts.tls.cert, '--tls-key', opts.tls.key);
  /* Forward (HTTPS_PROXY) listener: a CA made with `crmgate ca init` unless one is given. */
  let forward = null;
  if (opts.forward) {
    const f = opts.forward === true ? {} : opts.forward;
    const caDir = f.caDir || path.join(stateDir, 'forward-ca');
    if (!fs.existsSync(path.join(caDir, 'ca.pem'))) execFileSync(bin, ['ca', 'init', '--dir', caDir], { stdio: 'ignore' });
    forward = { caDir, listen: f.listen || '127.0.0.1:0' };
    if (f.via === 'config') {
      const file = args[args.indexOf('--config') + 1];
      const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
      cfg.forward = { listen: forward.listen, ca_dir: caDir };
      fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
    } else {
      args.push('--forward-listen', forward.listen, '--ca-dir', caDir);
    }
  }
  /* Transparent (iptables REDIRECT) listener: the same CA handling as forward. */
  let transparent = null;
  if (opts.transparent) {
    const t = opts.transparent === true ? {} : opts.transparent;
    const caDir = t.caDir || (forward ? forward.caDir : path.join(stateDir, 'forward-ca'));
    if (!fs.existsSync(path.join(caDir, 'ca.pem'))) execFileSync(bin, ['ca', 'init', '--dir', caDir], { stdio: 'ignore' });
    transparent = { caDir, listen: t.listen || '127.0.0.1:0' };
    if (t.via === 'config') {
      const file = args[args.indexOf('--config') + 1];
      const cfg = JSON.parse(fs.readFileSync(file, 'utf8'));
      cfg.transparent = { listen: transparent.listen, ca_dir: caDir };
      fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
    } else {
      args.push('--transparent-listen', transparent.listen);
      if (!args.includes('--ca-dir')) args.push('--ca-dir', caDir);
    }
  }
  args.push(...(opts.args || []));
  const written = JSON.parse(fs.readFileSync(args[args.indexOf('--config') + 1], 'utf8'));
  if (written.log_level === undefined && !args.includes('--log-level')) args.push('--log-level', e2eLogLevel());
  /* the callers' tokens are known only where the harness wrote the callers itself */
  const callerTokens = opts.config && (opts.config.rules_dir !== undefined || opts.config.callers !== undefined)
    ? [] : (opts.callers || OPEN_TOKENS.map((token) => ({ token }))).map((c) => c.token);
  sweep.noteStartSecrets(opts, written, args, callerTokens);
  const proc = track(nsSpawn(opts.netns, bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(opts.env || {}) } }));
  let err = '';
  let out = '';
  const closed = new Promise((resolve) => proc.once('close', resolve));
  const swept = { what: `crmgate pid ${proc.pid} (state ${stateDir})`, stateDir, text: () => err + out };
  unswept.add(swept);
  proc.stderr.on('data', (d) => { err += d; if (process.env.CRMGATE_LOG) process.stderr.write(d); });
  proc.stdout.on('data', (d) => { out += d; });
  const m = await waitForLine(proc, proc.stderr, /reverse listener on ([0-9.]+):(\d+)/, `crmgate (${bin} ${args.join(' ')})`, () => err + out);
  const port = Number(m[2]);
  let fwd = null;
  if (forward) {
    /* The forward line may come before or after the reverse one: match on everything captured. */
    fwd = await waitForText(proc, proc.stderr, () => err, /forward listener on ([0-9.]+):(\d+)/, `crmgate forward listener (${bin} ${args.join(' ')})`, () => err + out);
  }
  let tp = null;
  if (transparent) {
    tp = await waitForText(proc, proc.stderr, () => err, /transparent listener on ([0-9.]+):(\d+)/, `crmgate transparent listener (${bin} ${args.join(' ')})`, () => err + out);
  }
  detach(proc);
  /* The admin API's listeners are bound (and logged) before the reverse one. */
  const adminSocket = (err.match(/admin API on unix socket (\S+)/) || [])[1];
  const adminTcp = err.match(/admin listener on ([0-9.]+):(\d+)/);
  return {
    adminSocket,
    ...(adminTcp ? { adminUrl: `http://${adminTcp[1]}:${adminTcp[2]}` } : {}),
    /* admin(method, path, body?, headers?): the admin API over its unix socket */
    admin: async (method, p, body, headers) => {
      const r = await requestJson(`http://localhost${p}`, { method, body, headers, socketPath: adminSocket });
      sweep.noteAdminCall(method, p, body, r);
      return r;
    },
    ...(tp ? {
      transparentPort: Number(tp[2]),
      caDir: transparent.caDir,
      caCert: path.join(transparent.caDir, 'ca.pem'),
    } : {}),
    ...(fwd ? {
      forwardPort: Number(fwd[2]),
      forwardUrl: `http://${fwd[1]}:${fwd[2]}`,
      caDir: forward.caDir,
      caCert: path.join(forward.caDir, 'ca.pem'),
    } : {}),
    url: `${opts.tls || (opts.config && opts.config.tls) ? 'https' : 'http'}://${m[1]}:${port}`,
    port,
    proc,
    stateDir,
    args,
    stderr: () => err,
    stdout: () => out,
    /*
     * A SIGTERM stop must end in exit 0: a crash while draining, or a sanitizer or valgrind
     * report at exit (make asan, make valgrind), fails the test that stopped it.
     */
    stop: async ({ signal = 'SIGTERM', graceMs = 10000 } = {}) => {
      const code = await stopProc(proc, { signal, graceMs });
      /* all of its output read, then the secret sweep */
      let timer;
      await Promise.race([closed, new Promise((resolve) => { timer = setTimeout(resolve, 2000); })]);
      clearTimeout(timer);
      const hits = sweepGate(swept);
      if (signal === 'SIGTERM' && code !== 0) {
        throw new Error(`crmgate exited with ${code} after SIGTERM; stderr tail:\n${err.slice(-4000)}`);
      }
      if (hits.length) throw sweep.failure(swept.what, hits);
      return code;
    },
    waitExit: () => waitExit(proc),
  };
}

/* ---------------- the audit store, read raw ---------------- */

/*
 * Every audit record in stateDir/db, oldest first, read with lmdb-utils' mdb_dump (not with
 * crmgate's own code: an independent reader of what is on disk). Each value must be JSON;
 * a record that is not makes this throw, so a corrupt record fails the test that reads it.
 */
function readAuditRaw(stateDir) {
  /* hex ("bytevalue") format: Debian's mdb_dump -p prints a backslash unescaped, so its
   * printable format cannot be parsed back */
  const out = execFileSync('mdb_dump', ['-s', 'audit', path.join(stateDir, 'db')], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1024 * 1024 * 1024 }).toString('latin1');
  const lines = out.split('\n');
  let i = lines.indexOf('HEADER=END') + 1;
  const records = [];
  while (i < lines.length && lines[i] !== 'DATA=END') {
    records.push(auditRecordOf(lines[i], lines[i + 1]));
    i += 2;
  }
  return records;
}

/* One record of mdb_dump's hex output: its key line and value line, checked (JSON, its id). */
function auditRecordOf(keyLine, valLine) {
  const unescape = (t) => Buffer.from(t.trim(), 'hex');
  const key = unescape(keyLine.slice(1));
  const val = unescape(valLine.slice(1)).toString('utf8');
  let rec;
  try { rec = JSON.parse(val); } catch (e) { throw new Error(`audit record ${key.toString('hex')} is not JSON: ${val.slice(0, 200)}`); }
  if (rec.id !== key.readBigUInt64BE(0).toString()) throw new Error(`audit record ${key.toString('hex')} carries id ${rec.id}`);
  return rec;
}

/*
 * readAuditRaw for logs too big to hold: calls fn(record) for each, oldest first, as mdb_dump
 * streams them; resolves with the count, rejects on a bad record or a failed mdb_dump.
 */
function forEachAuditRaw(stateDir, fn) {
  return new Promise((resolve, reject) => {
    const child = spawn('mdb_dump', ['-s', 'audit', path.join(stateDir, 'db')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const rl = require('node:readline').createInterface({ input: child.stdout, crlfDelay: Infinity });
    let inData = false;
    let keyLine = null;
    let n = 0;
    let failed = null;
    let errText = '';
    child.stderr.on('data', (d) => { errText += d; });
    rl.on('line', (line) => {
      if (failed) return;
      if (!inData) { inData = line === 'HEADER=END'; return; }
      if (line === 'DATA=END') { inData = false; return; }
      if (keyLine === null) { keyLine = line; return; }
      try { fn(auditRecordOf(keyLine, line)); n++; } catch (e) { failed = e; child.kill(); }
      keyLine = null;
    });
    child.on('close', (code) => {
      if (failed) reject(failed);
      else if (code !== 0) reject(new Error(`mdb_dump exited ${code}: ${errText.slice(-500)}`));
      else resolve(n);
    });
  });
}

/*
 * A cursor over the audit log: each call returns the records appended since the previous call
 * (the first call returns every record so far).
 */
function auditCursor(stateDir) {
  let seen = 0;
  return () => {
    const all = readAuditRaw(stateDir);
    const fresh = all.slice(seen);
    seen = all.length;
    return fresh;
  };
}

/* A record's fields as {name: [before, after]}, for compact comparisons. */
function fieldMap(rec) {
  return Object.fromEntries(rec.fields.map((f) => [f.name, [f.before, f.after]]));
}

/*
 * Checks audit records against a list of expectations, one per record, in order: each may give
 * crm, object, verb, record, outcome, decision (compared when given), fields ({name: [before,
 * after]}, compared whole), workspace (default defaults.workspace) and synthetic (default
 * defaults.synthetic, itself false). Every record must have a numeric id and a timestamp.
 */
function expectAuditRecords(recs, want, defaults = {}) {
  const assert = require('node:assert/strict');
  assert.equal(recs.length, want.length, `records: ${JSON.stringify(recs, null, 1)}`);
  want.forEach((w, i) => {
    const r = recs[i];
    for (const k of ['crm', 'object', 'verb', 'record', 'outcome', 'decision']) {
      if (w[k] !== undefined) assert.equal(r[k], w[k], `record ${i} ${k}: ${JSON.stringify(r)}`);
    }
    if (w.fields) assert.deepEqual(fieldMap(r), w.fields, `record ${i} fields: ${JSON.stringify(r)}`);
    assert.equal(r.workspace, w.workspace || defaults.workspace, `record ${i} workspace`);
    assert.match(r.id, /^\d+$/);
    assert.equal(typeof r.ts, 'number');
    assert.equal(r.synthetic, w.synthetic !== undefined ? w.synthetic : (defaults.synthetic || false), `record ${i} synthetic: ${JSON.stringify(r)}`);
  });
}

/*
 * Rules and callers for a pair of open workspaces, one enforcing and one in dry_run, each with
 * a HubSpot and a Salesforce token: {enf: [name, hsToken, sfToken, user], dry: [...]}.
 */
function enforceAndDry({ enf, dry }) {
  const rules = {
    [`${enf[0]}.json`]: { workspace: enf[0], hubspot: OPEN_CRM, salesforce: OPEN_CRM },
    [`${dry[0]}.json`]: { workspace: dry[0], mode: 'dry_run', hubspot: OPEN_CRM, salesforce: OPEN_CRM },
  };
  const callers = [enf, dry].flatMap(([workspace, hs, sf, user]) => [{ token: hs, workspace, user }, { token: sf, workspace, user }]);
  return { rules, callers };
}

/*
 * A valid 18-character Salesforce id for seeding the fake: the key prefix, a 4-character tag
 * that keeps suites apart, a counter, and the case checksum.
 */
function sfId(prefix, tag, n) {
  const { idChecksum } = require('../fakecrm/salesforce.js');
  const id15 = prefix + tag + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}

/* The fake CRM's requests that would change state: everything but GETs and the POST reads. */
function fakeWrites(requests) {
  return requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD' &&
    !/\/batch\/read$|\/search$/.test(r.path) &&
    !(r.method === 'POST' && /^\/services\/data\/v[\d.]+\/composite\/sobjects\/[^/]+$/.test(r.path)));
}

/* ---------------- test certificates ---------------- */

function openssl(args, cwd) {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ? e.stderr.toString() : e.message}`);
  }
}

/*
 * A throwaway test CA and a server certificate for 127.0.0.1 and localhost, both P-256, made
 * with the openssl CLI. opts: {dir (default: a fresh temporary directory, removed at exit),
 * ca: {cert, key} (reuse an existing CA: only a new server key and certificate are made),
 * cn, san (default 'IP:127.0.0.1,DNS:localhost'), days (default 2)}.
 * Returns {dir, ca, caKey, cert, key} (absolute paths; cert.pem holds the server certificate
 * alone, the chain is that plus ca.pem).
 */
function makeTestCerts(opts = {}) {
  let dir = opts.dir;
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crmgate-e2e-certs-'));
    tmpdirs.add(dir);
  }
  fs.mkdirSync(dir, { recursive: true });
  const days = String(opts.days || 2);
  const ca = opts.ca ? opts.ca.cert : path.join(dir, 'ca.pem');
  const caKey = opts.ca ? opts.ca.key : path.join(dir, 'ca.key');
  if (!opts.ca) {
    openssl(['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', caKey, '-out', ca, '-days', days, '-subj', '/CN=crmgate e2e test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  const csr = path.join(dir, 'server.csr');
  const ext = path.join(dir, 'server.ext');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', csr, '-subj', `/CN=${opts.cn || 'crmgate e2e 127.0.0.1'}`]);
  fs.writeFileSync(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${opts.san || 'IP:127.0.0.1,DNS:localhost'}`,
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n'));
  openssl(['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-set_serial',
    `0x${require('node:crypto').randomBytes(8).toString('hex')}`, '-days', days, '-extfile', ext, '-out', cert]);
  fs.rmSync(csr, { force: true });
  fs.rmSync(ext, { force: true });
  return { dir, ca, caKey, cert, key };
}

/* ---------------- both ---------------- */

/* Fake CRM plus crmgate in front of it for both CRMs. opts: {fake: {...}, gate: {...}}. */
async function startStack(opts = {}) {
  const fake = await startFake(opts.fake || {});
  let gate;
  try {
    gate = await startCrmgate({ ...(opts.gate || {}), upstreams: { hubspot: fake.url, salesforce: fake.url } });
  } catch (e) {
    await fake.stop();
    throw e;
  }
  return {
    fake,
    gate,
    hubspotBase: `${gate.url}/hubspot`,
    salesforceBase: `${gate.url}/salesforce`,
    directHubspotBase: fake.url,
    directSalesforceBase: fake.url,
    stop: async () => {
      const code = await gate.stop();
      await fake.stop();
      return code;
    },
  };
}

module.exports = { noteSecret: sweep.noteSecret, noteCliSecrets: sweep.noteCliSecrets, rawRequest, enforceAndDry, netnsUnavailable, makeNetns, readAuditRaw, forEachAuditRaw, auditCursor, sfId, fieldMap, expectAuditRecords, fakeWrites, OPEN_CRM, startFake, startCrmgate, startStack, crmgateAvailable, crmgateBinary, requestJson, sha256, makeTestCerts, nsSpawn, OPEN_TOKENS, REPO };
