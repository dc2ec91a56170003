'use strict';
/*
 * The forward (HTTPS_PROXY) listener end to end (issue 5): crmgate serve --forward-listen
 * 127.0.0.1:0 --ca-dir DIR (or the config's {"forward": {"listen", "ca_dir"}}), with a CA made by
 * `crmgate ca init --dir DIR`. Clients set crmgate as their HTTPS proxy and trust DIR/ca.pem;
 * crmgate accepts CONNECT only to the CRM hosts, terminates TLS in the tunnel with a leaf minted
 * for the host, and runs the requests through the reverse-mode pipeline. Its upstreams are
 * overridden to the fake CRM, so nothing ever leaves loopback: the clients never resolve the CRM
 * host names (the proxy does the connecting) and crmgate sends api.hubapi.com and
 * acme.my.salesforce.com to the fake.
 *
 *   - real clients, configured only: jsforce (HTTPS_PROXY, read at module load), Node https with
 *     https-proxy-agent (@hubspot/api-client 13.5 ignores HTTPS_PROXY), curl -x, Python urllib;
 *   - Proxy-Authorization identity: Bearer and Basic map to the registered caller, an unregistered
 *     one is denied;
 *   - not an open proxy: other hosts, IP literals, wrong ports, look-alikes, CONNECT with a body,
 *     plain-HTTP absolute-form, SNI/Host mismatch; a tripwire listener on 127.0.0.1 (and on :443
 *     when the test can bind it) must see no connection, and the fake's log must stay empty;
 *   - the minted leaf: chains to DIR/ca.pem, SAN DNS:<host>, SNI fallback to the CONNECT host.
 *
 *   node --test tests/e2e/forward.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const tls = require('node:tls');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

function which(cmd) {
  try { require('node:child_process').execFileSync(cmd, ['--version'], { stdio: 'ignore' }); return true; } catch { return false; }
}
/* Skipped only when there is no binary at all: a binary without the forward listener fails every test. */
const SKIP = !harness.crmgateAvailable() ? `crmgate binary not built (${harness.crmgateBinary()})` : false;
const NO_CURL = !which('curl') && 'curl not installed';
const NO_PY = !which('python3') && 'python3 not installed';
let NO_OPENSSL = false;
try { require('node:child_process').execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch { NO_OPENSSL = 'openssl CLI not found'; }

const HS_TOKEN = 'pat-na1-f0a0aaaa-0000-0000-0000-000000000001'; /* registered: workspace fwdws */
const SF_TOKEN = '00DHs0000000001!AQforwardproxytoken';          /* registered: workspace fwdws */
const PROXY_KEY = 'crmgate-agent-key-forward-7';                  /* registered: workspace fwdproxy */
const UNREG_HS = 'pat-na1-deadbeef-0000-0000-0000-00000000dead';  /* a CRM token nobody registered */
const UNREG_SF = '00DHs0000000001!AQunregisteredtoken';
const UNREG_PROXY = 'crmgate-agent-key-nobody';
const VERSION = '62.0';
const SF_HOST = 'acme.my.salesforce.com';
const HS_HOST = 'api.hubapi.com';

function sid(prefix, n) {
  const id15 = prefix + 'Fwd0' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}
const ACC = sid('001', 1);
const CON = sid('003', 1);

/* fwdws: the CRM tokens' workspace. fwdproxy: the Proxy-Authorization key's, deliberately narrower. */
const RULES = {
  'fwdws.json': {
    workspace: 'fwdws',
    description: 'e2e: forward proxy, CRM-token callers',
    hubspot: { objects: { contacts: { read: ['email', 'firstname', 'lastname', 'lifecyclestage'], write: { lifecyclestage: {} } } } },
    salesforce: { objects: { Account: { read: ['Name', 'Industry'], write: ['Name'] } } },
  },
  'fwdproxy.json': {
    workspace: 'fwdproxy',
    description: 'e2e: forward proxy, Proxy-Authorization caller',
    hubspot: { objects: { contacts: { read: ['email'] } } },
    salesforce: { objects: { Account: { read: ['Name'] } } },
  },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'fwdws', user: 'crm-token@fwd', kind: 'workflow' },
  { token: SF_TOKEN, workspace: 'fwdws', user: 'crm-token@fwd', kind: 'workflow' },
  { token: PROXY_KEY, workspace: 'fwdproxy', user: 'proxy-key@fwd', kind: 'chat' },
];

const SEED = {
  hubspot: {
    objects: {
      contacts: [{ id: '101', properties: { email: 'ada@fwd.test', firstname: 'Ada', lastname: 'Lovelace', lifecyclestage: 'lead', phone: '555' } }],
      tickets: [{ id: '401', properties: { subject: 'Secret ticket', content: 'secret' } }],
    },
  },
  salesforce: {
    objects: {
      Account: [{ Id: ACC, Name: 'Acme Rockets', Industry: 'Aerospace', Phone: '555-0100' }],
      Contact: [{ Id: CON, LastName: 'Seeded', Email: 'sam@fwd.test', AccountId: ACC }],
    },
  },
};

let fake;
let gate;
let FWD; /* forward listener port */
let CA;  /* DIR/ca.pem */
const trip = { any: null, p443: null }; /* tripwire listeners: {server, port, hits} */

function tripwire(port) {
  return new Promise((resolve) => {
    const t = { hits: [], port: 0, server: null };
    const server = net.createServer((s) => {
      t.hits.push(`${s.remoteAddress}:${s.remotePort}`);
      s.destroy();
    });
    server.once('error', () => resolve(null)); /* e.g. :443 not bindable: that check is skipped */
    server.listen(port, '127.0.0.1', () => {
      t.server = server;
      t.port = server.address().port;
      server.unref();
      resolve(t);
    });
  });
}

before(async () => {
  if (SKIP) return;
  fake = await harness.startFake();
  gate = await harness.startCrmgate({
    upstreams: { hubspot: fake.url, salesforce: fake.url },
    rules: RULES,
    callers: CALLERS,
    forward: true,
  });
  FWD = gate.forwardPort;
  CA = gate.caCert;
  trip.any = await tripwire(0);
  trip.p443 = await tripwire(443);
});

after(async () => {
  for (const t of Object.values(trip)) if (t) t.server.close();
  if (gate && !gate.stopped) await gate.stop();
  if (fake) await fake.stop();
});

beforeEach(async () => {
  if (!fake) return;
  await fake.reset();
  await fake.seed(SEED);
  await fake.clearRequests();
});

/* ---------------- helpers ---------------- */

async function fakeLog() {
  return (await fake.requests()).map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* No connection reached a tripwire, and nothing reached the fake. */
async function assertNothingOutbound(what) {
  await sleep(150);
  assert.deepEqual(trip.any.hits, [], `${what}: crmgate connected to the tripwire 127.0.0.1:${trip.any.port}`);
  if (trip.p443) assert.deepEqual(trip.p443.hits, [], `${what}: crmgate connected to the tripwire 127.0.0.1:443`);
  assert.deepEqual(await fakeLog(), [], `${what}: nothing may reach the (fake) CRM`);
}

function cleanEnv(extra) {
  const env = { ...process.env };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY',
    'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'NODE_OPTIONS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
    'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_USE_ENV_PROXY']) delete env[k];
  return Object.assign(env, extra);
}

/* Runs a program (cwd = repo); resolves {code, stdout, stderr}; never rejects on a non-zero exit. */
function run(cmd, args, env, { input, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = execFile(cmd, args, { cwd: harness.REPO, env: cleanEnv(env), timeout, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err && err.killed) { reject(new Error(`${cmd} timed out:\n${stderr}\n${stdout}`)); return; }
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
  });
}

async function runJson(cmd, args, env) {
  const r = await run(cmd, args, env);
  try { return JSON.parse(r.stdout); } catch { throw new Error(`${cmd} printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`); }
}

const basic = (user, token) => `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;

/* Reads one HTTP head off a raw socket. Resolves {status, head, rest, ended}; ended = closed before a full head. */
function readHead(sock, ms = 5000) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0) {
        cleanup();
        const head = buf.subarray(0, i).toString('latin1');
        resolve({ status: Number(head.split(' ')[1]), head, rest: buf.subarray(i + 4), ended: false });
      }
    };
    const onEnd = () => { cleanup(); resolve({ status: null, head: buf.toString('latin1'), rest: Buffer.alloc(0), ended: true }); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no HTTP head within ${ms} ms; got ${JSON.stringify(buf.toString('latin1'))}`)); }, ms);
    function cleanup() { clearTimeout(timer); sock.off('data', onData); sock.off('end', onEnd); sock.off('close', onEnd); }
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
  });
}

/* Resolves true when the socket closes within ms (collecting what arrives), false if still open. */
function closesWithin(sock, ms = 2000) {
  return new Promise((resolve) => {
    if (sock.destroyed || sock.readableEnded) { resolve(true); return; }
    const timer = setTimeout(() => { sock.removeListener('close', onClose); resolve(false); }, ms);
    const onClose = () => { clearTimeout(timer); resolve(true); };
    sock.on('data', () => {});
    sock.once('end', () => { clearTimeout(timer); resolve(true); });
    sock.once('close', onClose);
    sock.on('error', () => {});
  });
}

/* Opens a TCP connection to the forward listener and sends `head` (a whole request, CRLFs included). */
async function rawForward(head) {
  const sock = net.connect({ host: '127.0.0.1', port: FWD });
  sock.on('error', () => {});
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  sock.write(head);
  return sock;
}

function connectHead(target, headers = {}) {
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/* CONNECT target; resolves {status, head, sock}. */
async function connect(target, headers) {
  const sock = await rawForward(connectHead(target, headers));
  const h = await readHead(sock);
  return { ...h, sock };
}

/* A CONNECT crmgate must refuse with `status` and then close: no tunnel, no outbound connection. */
async function expectRefused(target, status = 403, headers = {}, extraBody = '') {
  const sock = await rawForward(connectHead(target, headers) + extraBody);
  const h = await readHead(sock);
  const ok = Array.isArray(status) ? status.includes(h.status) : h.status === status;
  assert.ok(ok, `CONNECT ${target}: expected ${status}, got ${h.ended ? 'a close without an answer' : JSON.stringify(h.head)}`);
  assert.ok(await closesWithin(sock), `CONNECT ${target}: the connection must be closed after the ${status}`);
  sock.destroy();
}

/* TLS inside an established tunnel. opts: {servername ('' = no SNI), ca, checkServerIdentity}. */
function tunnelTls(sock, { servername = HS_HOST, ca = CA, ...rest } = {}) {
  return new Promise((resolve, reject) => {
    const o = { socket: sock, ca: fs.readFileSync(ca), ALPNProtocols: ['http/1.1'], ...rest };
    if (servername) o.servername = servername;
    else o.checkServerIdentity = () => undefined; /* no SNI: the test checks the SAN itself */
    const s = tls.connect(o, () => resolve(s));
    s.once('error', reject);
  });
}

/* Reads one whole HTTP/1.1 answer (Content-Length, chunked, or until close). */
function readResponse(sock, what = 'answer', ms = 3000) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const tryParse = (final) => {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return null;
      const lines = buf.subarray(0, i).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) { const c = l.indexOf(':'); headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim(); }
      let p = i + 4;
      let body;
      if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        const parts = [];
        for (;;) {
          const le = buf.indexOf('\r\n', p);
          if (le < 0) return null;
          const n = parseInt(buf.subarray(p, le).toString('latin1'), 16);
          if (n === 0) { body = Buffer.concat(parts); break; }
          if (buf.length < le + 2 + n + 2) return null;
          parts.push(buf.subarray(le + 2, le + 2 + n));
          p = le + 2 + n + 2;
        }
      } else if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        if (buf.length < p + n) return null;
        body = buf.subarray(p, p + n);
      } else if (final) body = buf.subarray(p);
      else return null;
      const text = body.toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: Number(lines[0].split(' ')[1]), statusLine: lines[0], headers, text, json };
    };
    const onData = (d) => { buf = Buffer.concat([buf, d]); const r = tryParse(false); if (r) { cleanup(); resolve(r); } };
    const onEnd = () => {
      cleanup();
      const r = tryParse(true);
      if (r) resolve(r); else reject(new Error(`${what}: connection closed before a whole answer: ${JSON.stringify(buf.toString('latin1').slice(0, 500))}`));
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${what}: no whole answer within ${ms} ms (got ${JSON.stringify(buf.toString('latin1').slice(0, 300))})`)); }, ms);
    function cleanup() { clearTimeout(timer); sock.off('data', onData); sock.off('end', onEnd); sock.off('close', onEnd); }
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
  });
}

function httpRequest({ method = 'GET', path: p, host = HS_HOST, token = HS_TOKEN, body, close = false, headers = {} }) {
  const lines = [`${method} ${p} HTTP/1.1`, `Host: ${host}`];
  if (token) lines.push(`Authorization: Bearer ${token}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  if (close) lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body === undefined ? '' : body}`;
}

/*
 * One request through a fresh tunnel: CONNECT `connectHost`:443 (with `proxyAuth` as
 * Proxy-Authorization), TLS with `servername`, then the request. Resolves the answer (plus
 * connectStatus and the peer certificate).
 */
async function viaTunnel({ connectHost = HS_HOST, proxyAuth, servername, ...req }) {
  const c = await connect(`${connectHost}:443`, proxyAuth ? { 'Proxy-Authorization': proxyAuth } : {});
  assert.equal(c.status, 200, `CONNECT ${connectHost}:443 (Proxy-Authorization: ${proxyAuth || 'none'}) -> ${c.ended ? 'closed' : c.head}`);
  const s = await tunnelTls(c.sock, { servername: servername === undefined ? connectHost : servername });
  const cert = s.getPeerCertificate();
  s.write(httpRequest({ host: connectHost, close: true, ...req }));
  const r = await readResponse(s);
  s.destroy();
  return { ...r, connectStatus: c.status, cert };
}

const CONTACT_EMAIL = '/crm/v3/objects/contacts/101?properties=email';

/* ---------------- startup ---------------- */

test('forward listener: ready line "forward listener on 127.0.0.1:PORT"; the CA in --ca-dir is used', { skip: SKIP }, () => {
  assert.match(gate.stderr(), /forward listener on 127\.0\.0\.1:\d+/);
  assert.match(gate.stderr(), /reverse listener on 127\.0\.0\.1:\d+/, 'the reverse listener runs beside it');
  assert.ok(FWD > 0 && FWD !== gate.port, `forward port ${FWD}, reverse port ${gate.port}`);
  assert.ok(fs.existsSync(CA), CA);
});

/* ---------------- real clients ---------------- */

const STEP = `
const out = {};
const step = async (name, fn) => {
  try { out[name] = { ok: await fn() }; }
  catch (e) {
    const cause = e.cause || {};
    out[name] = { error: { code: e.code, errorCode: e.errorCode, name: e.name, message: String(e.message),
      body: e.body, causeCode: cause.code, causeMessage: cause.message } };
  }
};`;

/* jsforce 3.10.16: HTTPS_PROXY is read at module load (transport.js) -> https-proxy-agent, one CONNECT per request. */
const JSFORCE_SCRIPT = `${STEP}
const jsforce = require('jsforce');
(async () => {
  const conn = new jsforce.Connection({ instanceUrl: 'https://${SF_HOST}', accessToken: process.env.T_TOKEN, version: '${VERSION}' });
  const steps = process.env.T_STEPS.split(',');
  if (steps.includes('read')) await step('read', async () => { const r = await conn.sobject('Account').retrieve('${ACC}'); return { Id: r.Id, Name: r.Name, Industry: r.Industry, Phone: r.Phone }; });
  if (steps.includes('query')) await step('query', async () => (await conn.query("SELECT Id, Name FROM Account WHERE Id = '${ACC}'")).records.map((r) => ({ Id: r.Id, Name: r.Name })));
  if (steps.includes('update')) await step('update', async () => conn.sobject('Account').update({ Id: '${ACC}', Name: 'Acme via forward proxy' }));
  if (steps.includes('denied')) await step('denied', async () => { const r = await conn.sobject('Contact').retrieve('${CON}'); return { Id: r.Id }; });
  process.stdout.write(JSON.stringify(out));
})();`;

test('Forward: jsforce with HTTPS_PROXY (instanceUrl https://acme.my.salesforce.com) reads, queries, updates and is denied', { skip: SKIP }, async () => {
  const t = await runJson(process.execPath, ['-e', JSFORCE_SCRIPT], {
    HTTPS_PROXY: `http://127.0.0.1:${FWD}`, NODE_EXTRA_CA_CERTS: CA, T_TOKEN: SF_TOKEN, T_STEPS: 'read,query,update,denied',
  });
  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.deepEqual(t.read.ok, { Id: ACC, Name: 'Acme Rockets', Industry: 'Aerospace' }, 'Phone is filtered out (not readable)');
  assert.ok(t.query.ok, `query: ${JSON.stringify(t.query)}`);
  assert.deepEqual(t.query.ok, [{ Id: ACC, Name: 'Acme Rockets' }]);
  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  assert.equal(t.update.ok.success, true, JSON.stringify(t.update.ok));
  assert.ok(t.denied.error, `Contact must be denied: ${JSON.stringify(t.denied)}`);
  assert.equal(t.denied.error.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY', JSON.stringify(t.denied.error));
  assert.match(t.denied.error.message, /crmgate/);

  const accs = (await fake.state()).salesforce.objects.Account;
  const acc = (Array.isArray(accs) ? accs : Object.values(accs)).find((r) => r.Id === ACC);
  assert.equal(acc.Name, 'Acme via forward proxy', 'the update reached the fake');
  const log = await fakeLog();
  assert.ok(log.some((l) => l.startsWith(`GET /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(log.some((l) => l.startsWith(`PATCH /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(!log.some((l) => /Contact/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);
});

test('Forward: jsforce with HTTPS_PROXY=http://agent:KEY@... (Proxy-Authorization Basic) is the registered proxy caller', { skip: SKIP }, async () => {
  /* The inner CRM token is unregistered: only the proxy key can identify the caller (workspace fwdproxy: Name only). */
  const t = await runJson(process.execPath, ['-e', JSFORCE_SCRIPT], {
    HTTPS_PROXY: `http://agent7:${encodeURIComponent(PROXY_KEY)}@127.0.0.1:${FWD}`, NODE_EXTRA_CA_CERTS: CA, T_TOKEN: UNREG_SF, T_STEPS: 'read',
  });
  assert.ok(t.read.ok, `read as the proxy caller: ${JSON.stringify(t.read)}`);
  assert.deepEqual(t.read.ok, { Id: ACC, Name: 'Acme Rockets' }, 'workspace fwdproxy reads Name only: Industry and Phone are filtered');
});

test('Forward: jsforce without the CA (no NODE_EXTRA_CA_CERTS) fails on the certificate; nothing reaches the CRM', { skip: SKIP }, async () => {
  const t = await runJson(process.execPath, ['-e', JSFORCE_SCRIPT], { HTTPS_PROXY: `http://127.0.0.1:${FWD}`, T_TOKEN: SF_TOKEN, T_STEPS: 'read' });
  assert.ok(t.read.error, `the read must fail: ${JSON.stringify(t.read)}`);
  const text = [t.read.error.code, t.read.error.causeCode, t.read.error.message].join(' ');
  assert.match(text, /certificate|UNABLE_TO|SELF_SIGNED/i, JSON.stringify(t.read.error));
  assert.deepEqual(await fakeLog(), []);
});

/* Node's https with https-proxy-agent 5 (jsforce's dependency): @hubspot/api-client 13.5 ignores HTTPS_PROXY and httpAgent. */
const HTTPS_AGENT_SCRIPT = `
const https = require('node:https');
const createHttpsProxyAgent = require('https-proxy-agent');
const get = (path, token, proxyAuth) => new Promise((resolve) => {
  const agent = createHttpsProxyAgent({ host: '127.0.0.1', port: Number(process.env.T_FWD), headers: proxyAuth ? { 'Proxy-Authorization': proxyAuth } : {} });
  const req = https.request('https://${HS_HOST}' + path, { agent, headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body = text; try { body = JSON.parse(text); } catch {}
      resolve({ status: res.statusCode, headers: res.headers, body });
    });
  });
  req.on('error', (e) => resolve({ error: { code: e.code, message: e.message } }));
  req.end();
});
(async () => {
  const calls = JSON.parse(process.env.T_CALLS);
  const out = [];
  for (const c of calls) out.push(await get(c.path, c.token, c.proxyAuth));
  process.stdout.write(JSON.stringify(out));
})();`;

test('Forward: Node https.request + https-proxy-agent reads api.hubapi.com contact 101, answered by the fake and filtered; tickets denied', { skip: SKIP }, async () => {
  const [read, denied] = await runJson(process.execPath, ['-e', HTTPS_AGENT_SCRIPT], {
    NODE_EXTRA_CA_CERTS: CA, T_FWD: String(FWD),
    T_CALLS: JSON.stringify([{ path: CONTACT_EMAIL, token: HS_TOKEN }, { path: '/crm/v3/objects/tickets/401', token: HS_TOKEN }]),
  });
  assert.equal(read.status, 200, JSON.stringify(read));
  assert.equal(read.body.id, '101');
  /* The fake answers email plus createdate, hs_object_id, lastmodifieddate; the workspace reads email only of those. */
  assert.deepEqual(read.body.properties, { email: 'ada@fwd.test' }, `filtered answer: ${JSON.stringify(read.body)}`);
  assert.equal(read.headers['x-crmgate-decision'], 'allow');
  assert.match(read.headers['x-crmgate-rule'] || '', /^fwdws\.json#/);
  assert.equal(denied.status, 403, JSON.stringify(denied));
  assert.equal(denied.body.subCategory, 'crmgate.policy_denied', JSON.stringify(denied.body));
  assert.equal(denied.headers['x-crmgate-decision'], 'deny');
  const log = await fakeLog();
  assert.deepEqual(log.filter((l) => /contacts\/101/.test(l)).length, 1, log.join('\n'));
  assert.ok(log.some((l) => l === `GET ${CONTACT_EMAIL}`), `the fake saw the request as sent:\n${log.join('\n')}`);
  assert.ok(!log.some((l) => /tickets/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);
});

test('Forward: Node https + https-proxy-agent with Proxy-Authorization: Bearer KEY maps to the proxy caller', { skip: SKIP }, async () => {
  const [r] = await runJson(process.execPath, ['-e', HTTPS_AGENT_SCRIPT], {
    NODE_EXTRA_CA_CERTS: CA, T_FWD: String(FWD),
    T_CALLS: JSON.stringify([{ path: CONTACT_EMAIL, token: UNREG_HS, proxyAuth: `Bearer ${PROXY_KEY}` }]),
  });
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.deepEqual(r.body.properties, { email: 'ada@fwd.test' });
  assert.match(r.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/, `decided by the proxy caller's workspace: ${r.headers['x-crmgate-rule']}`);
});

/* curl -x: CONNECT, then TLS verified against --cacert. */
function curl(args, extra = {}) {
  return run('curl', ['-sS', '-i', '--suppress-connect-headers', '--max-time', '10', '-w', '\n__CURL__ %{http_code} %{http_connect}', ...args], extra);
}
function parseCurl(r) {
  const m = /\n__CURL__ (\d+) (\d+)$/.exec(r.stdout);
  const out = r.stdout.slice(0, m ? m.index : undefined);
  const i = out.indexOf('\r\n\r\n');
  const headers = {};
  for (const l of out.slice(0, i).split('\r\n').slice(1)) { const c = l.indexOf(':'); headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim(); }
  const text = i >= 0 ? out.slice(i + 4) : '';
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { exit: r.code, status: m ? Number(m[1]) : null, connect: m ? Number(m[2]) : null, headers, text, json, stderr: r.stderr };
}

test('Forward: curl -x http://127.0.0.1:FWD --cacert ca.pem https://api.hubapi.com/... -H "Authorization: Bearer TOKEN"', { skip: SKIP || NO_CURL }, async () => {
  const r = parseCurl(await curl(['-x', `http://127.0.0.1:${FWD}`, '--cacert', CA, '-H', `Authorization: Bearer ${HS_TOKEN}`, `https://${HS_HOST}${CONTACT_EMAIL}`]));
  assert.equal(r.exit, 0, `curl exit ${r.exit}: ${r.stderr}`);
  assert.equal(r.connect, 200, 'CONNECT answered 200');
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.properties, { email: 'ada@fwd.test' }, r.text);
  assert.match(r.headers['x-crmgate-rule'] || '', /^fwdws\.json#/);
  assert.deepEqual(await fakeLog(), [`GET ${CONTACT_EMAIL}`]);
});

test('Forward: curl --proxy-user agent:KEY (Proxy-Authorization Basic) maps to the proxy caller', { skip: SKIP || NO_CURL }, async () => {
  const r = parseCurl(await curl(['-x', `http://127.0.0.1:${FWD}`, '--proxy-user', `agent7:${PROXY_KEY}`, '--cacert', CA,
    '-H', `Authorization: Bearer ${UNREG_HS}`, `https://${HS_HOST}${CONTACT_EMAIL}`]));
  assert.equal(r.exit, 0, `curl exit ${r.exit}: ${r.stderr}`);
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/, `rule ${r.headers['x-crmgate-rule']}`);
});

test('Forward: curl -x to a non-CRM https URL fails on a CONNECT 403 (curl exit 56)', { skip: SKIP || NO_CURL }, async () => {
  const r = parseCurl(await curl(['-x', `http://127.0.0.1:${FWD}`, '--cacert', CA, 'https://example.com/']));
  assert.equal(r.connect, 403, `CONNECT example.com:443 must get 403: ${r.stderr}`);
  assert.notEqual(r.exit, 0);
  await assertNothingOutbound('curl https://example.com via crmgate');
});

const PY_SCRIPT = `
import json, os, ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=os.environ['T_CA'])
def get(url, token):
    req = urllib.request.Request(url, headers={'Authorization': 'Bearer ' + token, 'Accept': 'application/json'})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return {'status': r.status, 'headers': {k.lower(): v for k, v in r.headers.items()}, 'body': json.loads(r.read() or b'null')}
    except urllib.error.HTTPError as e:
        return {'status': e.code, 'headers': {k.lower(): v for k, v in e.headers.items()}, 'body': e.read().decode('utf-8', 'replace')}
    except Exception as e:
        return {'error': type(e).__name__ + ': ' + str(e)}
out = {}
out['plain'] = get(os.environ['T_URL'], os.environ['T_TOKEN'])
# The same with the proxy key in the proxy URL: urllib sends Proxy-Authorization: Basic on the CONNECT.
os.environ['HTTPS_PROXY'] = os.environ['T_PROXY_WITH_KEY']
out['basic'] = get(os.environ['T_URL'], os.environ['T_UNREG'])
print(json.dumps(out))
`;

test('Forward: Python urllib with HTTPS_PROXY and an SSL context trusting ca.pem (plain and with proxy credentials)', { skip: SKIP || NO_PY }, async () => {
  const t = await runJson('python3', ['-c', PY_SCRIPT], {
    HTTPS_PROXY: `http://127.0.0.1:${FWD}`, T_CA: CA, T_URL: `https://${HS_HOST}${CONTACT_EMAIL}`, T_TOKEN: HS_TOKEN,
    T_UNREG: UNREG_HS, T_PROXY_WITH_KEY: `http://agent7:${encodeURIComponent(PROXY_KEY)}@127.0.0.1:${FWD}`,
  });
  assert.equal(t.plain.status, 200, JSON.stringify(t.plain));
  assert.deepEqual(t.plain.body.properties, { email: 'ada@fwd.test' });
  assert.match(t.plain.headers['x-crmgate-rule'] || '', /^fwdws\.json#/);
  assert.equal(t.basic.status, 200, JSON.stringify(t.basic));
  assert.match(t.basic.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/, `Basic proxy credentials map to the proxy caller: ${JSON.stringify(t.basic.headers)}`);
  assert.equal((await fakeLog()).length, 2);
});

/* ---------------- Proxy-Authorization identity (raw CONNECT) ---------------- */

test('Proxy-Authorization: Bearer KEY identifies the registered caller (its workspace decides, not the inner CRM token)', { skip: SKIP }, async () => {
  /* Inner token HS_TOKEN is itself registered (workspace fwdws, reads firstname): the proxy key must win. */
  const r = await viaTunnel({ proxyAuth: `Bearer ${PROXY_KEY}`, path: CONTACT_EMAIL, token: HS_TOKEN });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/, `rule: ${r.headers['x-crmgate-rule']}`);
  const d = await viaTunnel({ proxyAuth: `Bearer ${PROXY_KEY}`, path: '/crm/v3/objects/contacts/101?properties=email,firstname', token: HS_TOKEN });
  assert.equal(d.status, 403, `fwdproxy may not read firstname: ${d.text}`);
  assert.match(d.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/);
  assert.deepEqual(await fakeLog(), [`GET ${CONTACT_EMAIL}`], 'only the allowed call was forwarded');
});

test('Proxy-Authorization: Basic base64(user:KEY) identifies the registered caller; an unregistered inner CRM token does not matter', { skip: SKIP }, async () => {
  const r = await viaTunnel({ proxyAuth: basic('agent7', PROXY_KEY), path: CONTACT_EMAIL, token: UNREG_HS });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json && r.json.properties, { email: 'ada@fwd.test' }, r.text);
  assert.match(r.headers['x-crmgate-rule'] || '', /^fwdproxy\.json#/, `rule: ${r.headers['x-crmgate-rule']}`);
  const s = await viaTunnel({ connectHost: SF_HOST, proxyAuth: basic('agent7', PROXY_KEY), token: UNREG_SF,
    path: `/services/data/v${VERSION}/sobjects/Account/${ACC}` });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.Name, 'Acme Rockets');
  assert.equal(s.json.Industry, undefined, 'fwdproxy reads Name only');
});

/* Denied either at the CONNECT (403/407, closed) or inside the tunnel (403): never forwarded. */
async function expectProxyAuthDenied(proxyAuth, what) {
  const c = await connect(`${HS_HOST}:443`, { 'Proxy-Authorization': proxyAuth });
  if (c.status === 200) {
    const s = await tunnelTls(c.sock, { servername: HS_HOST });
    s.write(httpRequest({ path: CONTACT_EMAIL, token: HS_TOKEN, close: true }));
    const r = await readResponse(s);
    s.destroy();
    assert.equal(r.status, 403, `${what}: the request in the tunnel must be denied, got ${r.statusLine} ${r.text}`);
    assert.equal(r.headers['x-crmgate-decision'], 'deny');
    assert.doesNotMatch(r.text, /ada@fwd\.test/);
  } else {
    assert.ok(c.status === 403 || c.status === 407, `${what}: CONNECT -> ${c.ended ? 'closed without an answer' : c.head}`);
    c.sock.destroy();
  }
  assert.deepEqual(await fakeLog(), [], `${what}: nothing forwarded`);
}

test('Proxy-Authorization with an unregistered token is denied (Bearer and Basic), even with a registered inner CRM token', { skip: SKIP }, async () => {
  await expectProxyAuthDenied(`Bearer ${UNREG_PROXY}`, 'Bearer unregistered');
  await expectProxyAuthDenied(basic('agent7', UNREG_PROXY), 'Basic unregistered');
  /* A registered token in the user part of Basic is not the token. */
  await expectProxyAuthDenied(basic(PROXY_KEY, UNREG_PROXY), 'Basic with the key as user name');
});

test('without Proxy-Authorization the inner CRM token identifies the caller: registered 200, unregistered 403', { skip: SKIP }, async () => {
  const ok = await viaTunnel({ path: CONTACT_EMAIL, token: HS_TOKEN });
  assert.equal(ok.status, 200, ok.text);
  assert.match(ok.headers['x-crmgate-rule'] || '', /^fwdws\.json#/);
  await fake.clearRequests();
  const no = await viaTunnel({ path: CONTACT_EMAIL, token: UNREG_HS });
  assert.equal(no.status, 403, no.text);
  assert.equal(no.headers['x-crmgate-decision'], 'deny');
  assert.deepEqual(await fakeLog(), []);
});

test('one tunnel, keep-alive: a read, an update and a denied call answered in order', { skip: SKIP }, async () => {
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  assert.match(c.head, /^HTTP\/1\.1 200 /);
  const s = await tunnelTls(c.sock, { servername: HS_HOST });
  s.write(httpRequest({ path: '/crm/v3/objects/contacts/101?properties=lifecyclestage' }));
  let r = await readResponse(s, 'request 1 of the tunnel (GET contact 101)');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.lifecyclestage, 'lead');
  s.write(httpRequest({ method: 'PATCH', path: '/crm/v3/objects/contacts/101', body: JSON.stringify({ properties: { lifecyclestage: 'customer' } }) }));
  r = await readResponse(s, 'request 2 of the same tunnel (PATCH contact 101)');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.lifecyclestage, 'customer');
  s.write(httpRequest({ path: '/crm/v3/objects/tickets/401', close: true }));
  r = await readResponse(s, 'request 3 of the same tunnel (GET ticket 401, denied)');
  assert.equal(r.status, 403, r.text);
  s.destroy();
  assert.equal((await fake.state()).hubspot.objects.contacts.find((x) => x.id === '101').properties.lifecyclestage, 'customer');
  /* the read, crmgate's before-state read for the audit, the write; the denied call never left */
  assert.deepEqual((await fakeLog()).map((r) => r.split(' ')[0]), ['GET', 'GET', 'PATCH']);
});

test('one tunnel, pipelining: two requests in one write, two answers in order', { skip: SKIP }, async () => {
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  const s = await tunnelTls(c.sock, { servername: HS_HOST });
  s.write(httpRequest({ path: CONTACT_EMAIL }) + httpRequest({ path: '/crm/v3/objects/contacts/101?properties=lifecyclestage', close: true }));
  const all = await new Promise((resolve) => {
    let buf = '';
    const timer = setTimeout(() => resolve(buf), 3000);
    s.on('data', (d) => { buf += d.toString('latin1'); if ((buf.match(/HTTP\/1\.1 /g) || []).length >= 2 && /"lifecyclestage"/.test(buf)) { clearTimeout(timer); resolve(buf); } });
    s.on('close', () => { clearTimeout(timer); resolve(buf); });
  });
  s.destroy();
  const statuses = (all.match(/HTTP\/1\.1 \d+/g) || []).map((x) => Number(x.slice(9)));
  assert.deepEqual(statuses, [200, 200], `two pipelined requests in one tunnel: got ${statuses.length} answer(s) ${JSON.stringify(statuses)}`);
  assert.ok(all.indexOf('"email"') < all.indexOf('"lifecyclestage"'), 'answers in request order');
});

test('Connection: close inside the tunnel: crmgate closes the tunnel after the answer', { skip: SKIP }, async () => {
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  const s = await tunnelTls(c.sock, { servername: HS_HOST });
  s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
  const r = await readResponse(s, 'GET with Connection: close');
  assert.equal(r.status, 200, r.text);
  const closed = await closesWithin(s, 2000);
  s.destroy();
  assert.ok(closed, 'after answering a "Connection: close" request crmgate must close the tunnel (the client waits for EOF); it was still open 2 s later');
});

/* ---------------- not an open proxy ---------------- */

test('Not an open proxy: CONNECT example.com:443 -> 403, closed, no outbound connection', { skip: SKIP }, async () => {
  await expectRefused('example.com:443');
  await expectRefused('example.com:443', 403, { 'Proxy-Authorization': `Bearer ${PROXY_KEY}` }); /* a registered caller changes nothing */
  await assertNothingOutbound('CONNECT example.com:443');
});

test('Not an open proxy: CONNECT to IP literals (127.0.0.1:443, 127.0.0.1:<tripwire>, [::1]:443) -> 403; the tripwires see nothing', { skip: SKIP }, async (t) => {
  /* The salesforce upstream is http://127.0.0.1:<fake>: its host is an IP, and IPs are refused all the same. */
  const got = {};
  for (const target of ['127.0.0.1:443', `127.0.0.1:${trip.any.port}`, `127.0.0.1:${fake.port}`, '[::1]:443', '2130706433:443', '10.0.0.1:443']) {
    try { await expectRefused(target); got[target] = 403; } catch (e) { got[target] = e.message; }
  }
  await assertNothingOutbound('CONNECT to IP literals');
  const bad = Object.entries(got).filter(([, v]) => v !== 403);
  assert.deepEqual(bad, [], `IP literals must get 403 and a close:\n${bad.map(([k, v]) => `  CONNECT ${k}: ${v}`).join('\n')}`);
  if (!trip.p443) t.diagnostic('127.0.0.1:443 could not be bound: that tripwire was skipped');
});

test('Not an open proxy: a CRM host on a port other than 443, or an odd spelling of 443 or of the host -> 403 (api.hubapi.com:8443, :+443, user@api.hubapi.com:443)', { skip: SKIP }, async () => {
  const bad = [];
  for (const [target, status] of [['api.hubapi.com:8443', 403], [`api.hubapi.com:${trip.any.port}`, 403], [`${SF_HOST}:80`, 403],
    ['api.hubapi.com', [400, 403]] /* no port at all: malformed (400) or refused (403) */,
    /* 443 spelled so that strtol reads 443 but a URL parser would not: refused too */
    ['api.hubapi.com:+443', 403], ['api.hubapi.com:443abc', 403], ['api.hubapi.com:0x1bb', 403], ['api.hubapi.com:65979', 403],
    ['user@api.hubapi.com:443', [400, 403]], ['api.hubapi.com%2e:443', [400, 403]]]) {
    try { await expectRefused(target, status); } catch (e) { bad.push(e.message); }
  }
  assert.deepEqual(bad, []);
  await assertNothingOutbound('CONNECT to CRM hosts on wrong ports');
});

test('Not an open proxy: look-alike and non-allow-listed hosts -> 403', { skip: SKIP }, async () => {
  const bad = [];
  for (const host of ['api.hubapi.com.evil.example', `${SF_HOST}.evil.example`, 'evilmy.salesforce.com', 'x.api.hubapi.com',
    'a.b.my.salesforce.com', 'hubapi.com', 'www.salesforce.com', 'localhost', 'localhost.', 'api.hubapi.com.']) {
    try { await expectRefused(`${host}:443`); } catch (e) { bad.push(e.message); }
  }
  assert.deepEqual(bad, []);
  await assertNothingOutbound('CONNECT to look-alike hosts');
});

/* Credentials a client put in a CONNECT or absolute-form target are refused and never echoed or logged. */
test('Not an open proxy: user info in a CONNECT or absolute-form target is refused, and neither logged nor echoed', { skip: SKIP }, async () => {
  const secret = 'S3cretProxyPw';
  const mark = gate.stderr().length;
  for (const head of [connectHead(`agent:${secret}@${HS_HOST}:443`), connectHead(`agent:${secret}@example.com:443`),
    `GET http://agent:${secret}@${HS_HOST}/crm/v3/objects/contacts/101 HTTP/1.1\r\nHost: ${HS_HOST}\r\n\r\n`]) {
    const sock = await rawForward(head);
    const r = await readResponse(sock, head.split('\r\n')[0]);
    sock.destroy();
    assert.ok(r.status === 400 || r.status === 403, `${head.split('\r\n')[0]}: ${r.statusLine}`);
    assert.doesNotMatch(r.text, new RegExp(secret), 'the answer must not echo the credentials');
  }
  await sleep(200);
  const log = gate.stderr().slice(mark);
  assert.match(log, /connect_refused|plain_http_refused/, log);
  assert.doesNotMatch(log, new RegExp(secret), `the log must not carry the credentials:\n${log}`);
  await assertNothingOutbound('user info in a target');
});

test('Not an open proxy: CONNECT carrying a body header (Content-Length, Transfer-Encoding) -> 400', { skip: SKIP }, async () => {
  await expectRefused(`${HS_HOST}:443`, 400, { 'Content-Length': '5' }, 'hello');
  await expectRefused(`${HS_HOST}:443`, 400, { 'Transfer-Encoding': 'chunked' }, '5\r\nhello\r\n0\r\n\r\n');
  await assertNothingOutbound('CONNECT with a body');
});

test('Not an open proxy: plain-HTTP absolute-form requests (GET http://api.hubapi.com/...) -> 403, nothing forwarded', { skip: SKIP }, async () => {
  for (const target of [`http://${HS_HOST}${CONTACT_EMAIL}`, `http://127.0.0.1:${trip.any.port}/`, 'http://example.com/']) {
    const sock = await rawForward(httpRequest({ path: target, host: new URL(target).host }));
    const r = await readResponse(sock);
    sock.destroy();
    assert.equal(r.status, 403, `GET ${target}: ${r.statusLine} ${r.text}`);
    assert.doesNotMatch(r.text, /ada@fwd\.test/);
  }
  if (!NO_CURL) {
    const c = parseCurl(await curl(['-x', `http://127.0.0.1:${FWD}`, '-H', `Authorization: Bearer ${HS_TOKEN}`, `http://${HS_HOST}${CONTACT_EMAIL}`]));
    assert.equal(c.status, 403, `curl -x ... http://api.hubapi.com: ${c.text} ${c.stderr}`);
  }
  await assertNothingOutbound('absolute-form plain HTTP');
});

test('SNI/Host mismatch: SNI api.hubapi.com with Host: evil.example.com -> 421, nothing forwarded', { skip: SKIP }, async () => {
  const r = await viaTunnel({ servername: HS_HOST, host: 'evil.example.com', path: CONTACT_EMAIL });
  assert.equal(r.status, 421, `${r.statusLine} ${r.text}`);
  /* Host is a CRM host too, but not the tunnel's: still 421. */
  const h = await viaTunnel({ servername: HS_HOST, host: 'api.hubspot.com', path: CONTACT_EMAIL });
  assert.equal(h.status, 421, `Host api.hubspot.com in an api.hubapi.com tunnel: ${h.statusLine} ${h.text}`);
  const s = await viaTunnel({ connectHost: SF_HOST, servername: SF_HOST, host: 'other.my.salesforce.com', token: SF_TOKEN,
    path: `/services/data/v${VERSION}/sobjects/Account/${ACC}` });
  assert.equal(s.status, 421, `Host other.my.salesforce.com in an ${SF_HOST} tunnel: ${s.statusLine} ${s.text}`);
  await assertNothingOutbound('SNI/Host mismatch');
});

test('SNI/CONNECT-host mismatch: CONNECT api.hubapi.com:443, SNI and Host api.hubspot.com -> refused (421 or handshake failure)', { skip: SKIP }, async (t) => {
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  let outcome;
  try {
    const s = await tunnelTls(c.sock, { servername: 'api.hubspot.com' });
    s.write(httpRequest({ host: 'api.hubspot.com', path: CONTACT_EMAIL, close: true }));
    const r = await readResponse(s).catch((e) => ({ status: null, statusLine: e.message, text: '' }));
    s.destroy();
    outcome = r.status;
    t.diagnostic(`answered ${r.statusLine}`);
    assert.equal(r.status, 421, `Host api.hubspot.com through CONNECT api.hubapi.com: ${r.statusLine} ${r.text}`);
  } catch (e) {
    if (outcome !== undefined) throw e;
    /* crmgate refused the handshake for an SNI other than the CONNECT host: also not forwarded. */
    t.diagnostic(`handshake refused: ${e.code || e.message}`);
    assert.match(String(e.code || e.message), /ECONNRESET|EPIPE|alert|handshake|socket/i, e.message);
  }
  c.sock.destroy();
  await assertNothingOutbound('SNI differs from the CONNECT host');
});

/*
 * Inside a tunnel, a request's head gets every check the reverse listener makes (the tunnel
 * check once returned early and skipped them all): an override the classifiers do not read could
 * turn a checked read into a write, a compressed body would be forwarded unread by the policy.
 */
const TUNNEL_HEAD_CASES = [
  ['an X-HTTP-Method header', { headers: { 'X-HTTP-Method': 'DELETE' } }, 400, 'method_override'],
  ['an X-Method-Override header', { headers: { 'X-Method-Override': 'DELETE' } }, 400, 'method_override'],
  ['two Authorization headers', { headers: { Authorization: `Bearer ${UNREG_HS}` } }, 400, 'duplicate_header'],
  ['a gzipped body', { method: 'PATCH', path: '/crm/v3/objects/contacts/101', body: '{"properties":{"lifecyclestage":"customer"}}',
    headers: { 'Content-Encoding': 'gzip' } }, 415, 'content_encoding'],
  ['Transfer-Encoding other than chunked', { method: 'PATCH', path: '/crm/v3/objects/contacts/101', rawBody: '2\r\n{}\r\n0\r\n\r\n',
    headers: { 'Transfer-Encoding': 'gzip, chunked' } }, 501, 'transfer_encoding'],
  ['an Upgrade request', { headers: { Connection: 'Upgrade', Upgrade: 'websocket' } }, 501, 'upgrade_not_supported'],
  ['an Expect other than 100-continue', { headers: { Expect: 'something' } }, 417, 'expectation'],
  ['a body past limits.body_bytes', { method: 'PATCH', path: '/crm/v3/objects/contacts/101', rawBody: '',
    headers: { 'Content-Length': String(64 << 20) } }, 413, 'body_too_large'],
];
for (const [name, req, status, code] of TUNNEL_HEAD_CASES) {
  test(`inside a tunnel, ${name} is refused as on the reverse listener (${status} ${code}), nothing forwarded`, { skip: SKIP }, async () => {
    const { rawBody, ...rest } = req;
    const c = await connect(`${HS_HOST}:443`);
    assert.equal(c.status, 200, c.head);
    const s = await tunnelTls(c.sock, { servername: HS_HOST });
    let bytes = httpRequest({ path: CONTACT_EMAIL, ...rest });
    if (rawBody !== undefined) bytes += rawBody;
    s.write(bytes);
    const r = await readResponse(s, name);
    s.destroy();
    assert.equal(r.status, status, `${name}: ${r.statusLine} ${r.text}`);
    assert.equal(r.headers['x-crmgate-error'], code, r.text);
    await assertNothingOutbound(`${name} in a tunnel`);
  });
}

/*
 * A request crmgate refuses inside a tunnel is answered in the tunnel CRM's error shape, as in
 * reverse mode: Salesforce's [{message, errorCode}] in a *.my.salesforce.com tunnel (the
 * connection-level refusals once came in HubSpot's shape there, the path having no /salesforce
 * prefix to tell), HubSpot's {status, message, category} in an api.hubapi.com one.
 */
test('refusals inside a tunnel come in the tunnel CRM\'s error shape (421, 400, 415)', { skip: SKIP }, async () => {
  const sfPath = `/services/data/v${VERSION}/sobjects/Account/${ACC}`;
  for (const [req, status] of [
    [{ host: 'other.my.salesforce.com' }, 421],
    [{ headers: { 'X-HTTP-Method': 'DELETE' } }, 400],
    [{ method: 'PATCH', body: '{"Name":"x"}', headers: { 'Content-Encoding': 'gzip' } }, 415],
  ]) {
    const sf = await viaTunnel({ connectHost: SF_HOST, token: SF_TOKEN, path: sfPath, ...req });
    assert.equal(sf.status, status, `${SF_HOST}: ${sf.statusLine} ${sf.text}`);
    assert.ok(Array.isArray(sf.json) && typeof sf.json[0].errorCode === 'string' && typeof sf.json[0].message === 'string',
      `${status} in a Salesforce tunnel must be Salesforce-shaped: ${sf.text}`);
    const hs = await viaTunnel({ path: CONTACT_EMAIL, ...req, host: req.host ? 'api.hubspot.com' : HS_HOST });
    assert.equal(hs.status, status, `${HS_HOST}: ${hs.statusLine} ${hs.text}`);
    assert.ok(hs.json && hs.json.status === 'error' && typeof hs.json.category === 'string', `${status} in a HubSpot tunnel must be HubSpot-shaped: ${hs.text}`);
  }
  await assertNothingOutbound('refusals inside tunnels');
});

/* One raw request head through a fresh api.hubapi.com tunnel (SNI `servername`); resolves the answer. */
async function rawInTunnel(head, { servername = HS_HOST, connectHost = HS_HOST } = {}) {
  const c = await connect(`${connectHost}:443`);
  assert.equal(c.status, 200, c.head);
  const s = await tunnelTls(c.sock, { servername, checkServerIdentity: () => undefined });
  s.write(head);
  const r = await readResponse(s, head.split('\r\n')[0]);
  s.destroy();
  return r;
}

test('inside a tunnel: a second CONNECT, an absolute-form target, two Host headers or none -> 400, nothing forwarded', { skip: SKIP }, async () => {
  const auth = `Authorization: Bearer ${HS_TOKEN}\r\n`;
  const bad = [];
  for (const head of [
    `CONNECT ${HS_HOST}:443 HTTP/1.1\r\nHost: ${HS_HOST}:443\r\n\r\n`,
    `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`,
    `CONNECT 127.0.0.1:${trip.any.port} HTTP/1.1\r\nHost: 127.0.0.1:${trip.any.port}\r\n\r\n`,
    `GET https://${HS_HOST}${CONTACT_EMAIL} HTTP/1.1\r\nHost: ${HS_HOST}\r\n${auth}\r\n`,
    `GET http://127.0.0.1:${trip.any.port}/ HTTP/1.1\r\nHost: ${HS_HOST}\r\n${auth}\r\n`,
    `GET ${CONTACT_EMAIL} HTTP/1.1\r\nHost: ${HS_HOST}\r\nHost: evil.example.com\r\n${auth}\r\n`,
    `GET ${CONTACT_EMAIL} HTTP/1.1\r\nHost: ${HS_HOST}\r\nHost: ${HS_HOST}\r\n${auth}\r\n`,
    `GET ${CONTACT_EMAIL} HTTP/1.0\r\n${auth}\r\n`,
  ]) {
    const r = await rawInTunnel(head);
    if (r.status !== 400) bad.push(`${JSON.stringify(head.split('\r\n').slice(0, 3))}: ${r.statusLine} ${r.text}`);
  }
  assert.deepEqual(bad, []);
  await assertNothingOutbound('odd request targets in a tunnel');
});

test('inside a tunnel: Host spellings of the tunnel host pass (case, :443, HTTP/1.0); any other port or a trailing dot -> 421', { skip: SKIP }, async () => {
  const got = {};
  for (const [host, status, version = '1.1'] of [
    ['API.HubAPI.com', 200], [`${HS_HOST}:443`, 200], [HS_HOST, 200, '1.0'],
    [`${HS_HOST}.`, 421], [`${HS_HOST}:8443`, 421], [`${HS_HOST}:0443`, 421], [`${HS_HOST}:`, 421],
    [`user@${HS_HOST}`, 421], [`${HS_HOST}.evil.example`, 421], ['api.hubspot.com', 421]]) {
    const r = await rawInTunnel(`GET ${CONTACT_EMAIL} HTTP/${version}\r\nHost: ${host}\r\nAuthorization: Bearer ${HS_TOKEN}\r\nConnection: close\r\n\r\n`);
    got[`${host} HTTP/${version}`] = r.status === status ? 'ok' : `${r.statusLine} ${r.text}`;
  }
  assert.deepEqual(Object.entries(got).filter(([, v]) => v !== 'ok'), []);
});

test('SNI spellings of the CONNECT host are the same host (upper case, trailing dot): served, leaf for the canonical name', { skip: SKIP }, async () => {
  for (const servername of ['API.HUBAPI.COM', `${HS_HOST}.`]) {
    const c = await connect(`${HS_HOST}:443`);
    assert.equal(c.status, 200, c.head);
    const s = await tunnelTls(c.sock, { servername, checkServerIdentity: () => undefined });
    assert.equal(s.authorized, true, `${servername}: ${s.authorizationError}`);
    assert.equal(s.getPeerCertificate().subjectaltname, `DNS:${HS_HOST}`, servername);
    s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
    const r = await readResponse(s, `SNI ${servername}`);
    s.destroy();
    assert.equal(r.status, 200, `SNI ${servername}: ${r.statusLine} ${r.text}`);
  }
});

/*
 * A client that does not wait for the 200: CONNECT and its ClientHello in one write. The bytes
 * after the CONNECT head are the tunnel's first TLS bytes, used by the handshake (not lost, not
 * parsed as HTTP). The 200 is cut off the stream before the TLS client reads it.
 */
test('CONNECT and the ClientHello in one write (no wait for the 200): the tunnel handshakes and serves', { skip: SKIP }, async () => {
  const { Duplex } = require('node:stream');
  const sock = net.connect({ host: '127.0.0.1', port: FWD });
  sock.on('error', () => {});
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  let head = Buffer.alloc(0);
  let headDone = false;
  let first = true;
  const wire = new Duplex({
    write(chunk, enc, cb) {
      /* the CONNECT head goes out with the first TLS bytes, in one write */
      sock.write(first ? Buffer.concat([Buffer.from(connectHead(`${HS_HOST}:443`)), chunk]) : chunk, cb);
      first = false;
    },
    read() {},
  });
  sock.on('data', (d) => {
    if (headDone) { wire.push(d); return; }
    head = Buffer.concat([head, d]);
    const i = head.indexOf('\r\n\r\n');
    if (i < 0) return;
    headDone = true;
    assert.match(head.subarray(0, i).toString('latin1'), /^HTTP\/1\.1 200 /);
    if (head.length > i + 4) wire.push(head.subarray(i + 4));
  });
  sock.on('end', () => wire.push(null));
  const s = await tunnelTls(wire, { servername: HS_HOST });
  s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
  const r = await readResponse(s, 'pipelined CONNECT');
  s.destroy();
  sock.destroy();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.email, 'ada@fwd.test');
});

/* A ClientHello cut into 7-byte TCP segments (a write every 2 ms) is reassembled and served. */
test('a ClientHello split over many small TCP segments still handshakes and is served', { skip: SKIP }, async () => {
  const { Duplex } = require('node:stream');
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  c.sock.setNoDelay(true);
  let segments = 0;
  const wire = new Duplex({
    async write(chunk, enc, cb) {
      for (let i = 0; i < chunk.length; i += 7) {
        c.sock.write(chunk.subarray(i, i + 7));
        segments++;
        await sleep(2);
      }
      cb();
    },
    read() {},
  });
  c.sock.on('data', (d) => wire.push(d));
  c.sock.on('end', () => wire.push(null));
  const s = await tunnelTls(wire, { servername: HS_HOST });
  assert.ok(segments > 20, `the ClientHello went out in ${segments} pieces`);
  s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
  const r = await readResponse(s, 'split ClientHello', 10000);
  s.destroy();
  c.sock.destroy();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.email, 'ada@fwd.test');
});

/*
 * Handshakes cannot be held open: a connection has limits.header_timeout_ms from its accept (or
 * from the 200) to finish its TLS handshake and send a request head, whatever it trickles.
 */
test('a silent or trickled CONNECT or ClientHello is closed at limits.header_timeout_ms; nothing forwarded', { skip: SKIP }, async () => {
  const g = await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS,
    forward: { caDir: gate.caDir }, workers: 1, config: { limits: { header_timeout_ms: 600 } } });
  const hello = Buffer.from('16030100f4010000f00303' + '00'.repeat(200), 'hex'); /* the start of a ClientHello */
  const open = async (bytes) => {
    const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
    c.on('error', () => {});
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    if (bytes) c.write(bytes);
    return c;
  };
  /* one byte every 100 ms: every read arrives well inside any per-read timeout */
  const trickle = (c, buf) => { let i = 0; const t = setInterval(() => { if (i >= buf.length || c.destroyed) clearInterval(t); else c.write(buf.subarray(i, ++i)); }, 100); return t; };
  const timers = [];
  try {
    const cases = {};
    cases['nothing sent'] = await open();
    const slowConnect = await open();
    timers.push(trickle(slowConnect, Buffer.from(connectHead(`${HS_HOST}:443`))));
    cases['CONNECT head trickled'] = slowConnect;
    for (const [name, rest] of [['no ClientHello after the 200', null], ['a ClientHello trickled after the 200', hello]]) {
      const c = await open(connectHead(`${HS_HOST}:443`));
      const h = await readHead(c);
      assert.equal(h.status, 200, h.head);
      if (rest) timers.push(trickle(c, rest));
      cases[name] = c;
    }
    const t0 = Date.now();
    const closed = await Promise.all(Object.values(cases).map((c) => closesWithin(c, 5000)));
    const elapsed = Date.now() - t0;
    assert.deepEqual(Object.fromEntries(Object.keys(cases).map((k, i) => [k, closed[i]])),
      Object.fromEntries(Object.keys(cases).map((k) => [k, true])), 'each connection is closed by crmgate');
    assert.ok(elapsed < 4000, `closed after ${elapsed} ms (header_timeout_ms 600)`);
    assert.deepEqual(await fakeLog(), []);
  } finally {
    for (const t of timers) clearInterval(t);
    await g.stop({ signal: 'SIGKILL' });
  }
});

/*
 * TLS sessions belong to the host they were made for. A client resuming a session from an
 * api.hubapi.com tunnel in an api.hubspot.com one would skip the certificate for the new name
 * (RFC 6066 §3: the server MUST NOT resume under a different server_name): it gets a full
 * handshake with a leaf for the new host, while resuming for the same host still works.
 */
for (const version of ['TLSv1.2', 'TLSv1.3']) {
  test(`${version}: a session is resumed for its own host only; another host gets a full handshake and its own leaf`, { skip: SKIP }, async () => {
    const open = async (host, session) => {
      const c = await connect(`${host}:443`);
      assert.equal(c.status, 200, c.head);
      let got = null;
      const s = tls.connect({ socket: c.sock, servername: host, ca: fs.readFileSync(CA), session, minVersion: version, maxVersion: version });
      s.on('session', (x) => { got = x; });
      await new Promise((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
      s.write(httpRequest({ host, path: CONTACT_EMAIL }));
      const r = await readResponse(s, `${version} ${host}`);
      for (let i = 0; i < 50 && got === null; i++) await sleep(10); /* TLS 1.3 tickets follow the handshake */
      const out = { status: r.status, reused: s.isSessionReused(), san: s.getPeerCertificate().subjectaltname, session: got };
      s.destroy();
      return out;
    };
    const first = await open(HS_HOST);
    assert.equal(first.status, 200);
    assert.ok(first.session, 'crmgate issued a session');
    const same = await open(HS_HOST, first.session);
    assert.equal(same.status, 200);
    assert.equal(same.reused, true, 'a session is resumed for the host it was made for');
    const other = await open('api.hubspot.com', first.session);
    assert.equal(other.status, 200);
    assert.equal(other.reused, false, 'a session made for api.hubapi.com must not be resumed for api.hubspot.com');
    assert.equal(other.san, 'DNS:api.hubspot.com');
  });
}

/*
 * Half-open tunnels count against limits.connections like any connection: past the cap a new
 * one is closed at once (no 200, no handshake, no outbound), and the slots come back when the
 * held ones reach limits.header_timeout_ms.
 */
test('half-open tunnels count against limits.connections; past it a new CONNECT is closed at once; slots return at the header timeout', { skip: SKIP }, async () => {
  const g = await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS,
    forward: { caDir: gate.caDir }, workers: 1, config: { limits: { connections: 2, header_timeout_ms: 1500 } } });
  const open = async () => {
    const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
    c.on('error', () => {});
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    c.write(connectHead(`${HS_HOST}:443`));
    return c;
  };
  const held = [];
  try {
    for (let i = 0; i < 2; i++) {
      const c = await open();
      held.push(c);
      assert.equal((await readHead(c)).status, 200, 'a tunnel within the cap');
    }
    const over = await open();
    const h = await readHead(over).catch((e) => ({ status: null, ended: false, head: e.message }));
    assert.equal(h.ended, true, `past limits.connections the connection is closed without an answer: ${h.head}`);
    /* the refusal's log line may reach us after the close: poll for it */
    for (const t0 = Date.now(); !/limits\.connections/.test(g.stderr()) && Date.now() - t0 < 3000;) await sleep(20);
    assert.match(g.stderr(), /limits\.connections/);
    /* the held tunnels never send a ClientHello: closed at the header timeout, freeing the slots */
    assert.deepEqual(await Promise.all(held.map((c) => closesWithin(c, 6000))), [true, true]);
    let ok = null;
    for (const t0 = Date.now(); ok === null && Date.now() - t0 < 5000; await sleep(50)) {
      const c = await open();
      const r = await readHead(c).catch(() => ({ status: null }));
      c.destroy();
      if (r.status === 200) ok = c;
    }
    assert.ok(ok, 'once the held tunnels timed out, a new CONNECT is served');
    assert.deepEqual(await fakeLog(), []);
  } finally {
    for (const c of held) c.destroy();
    await g.stop({ signal: 'SIGKILL' });
  }
});

/* crmgate never follows an upstream redirect: the client gets the 3xx, and the Location host nothing. */
test('an upstream redirect is answered to the client, never followed (the Location host sees no connection)', { skip: SKIP }, async () => {
  for (const status of [301, 302, 307, 308]) {
    await fake.fault({ action: 'status', status, match: { path: '^/crm/v3/objects/contacts/101$' }, count: 1,
      headers: { Location: `http://127.0.0.1:${trip.any.port}/crm/v3/objects/contacts/101` }, body: { status: 'error', message: 'moved' } });
    const r = await viaTunnel({ path: CONTACT_EMAIL });
    assert.equal(r.status, status, `${status}: ${r.statusLine} ${r.text}`);
    await sleep(100);
    assert.deepEqual(trip.any.hits, [], `${status}: crmgate followed the redirect`);
  }
  await fake.clearFaults();
});

/* ---------------- the minted leaf ---------------- */

test('Leaf: the certificate presented for api.hubapi.com chains to ca.pem and has SAN DNS:api.hubapi.com (Node tls)', { skip: SKIP }, async () => {
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  const s = await tunnelTls(c.sock, { servername: HS_HOST });
  assert.equal(s.authorized, true, `chain verified against ca.pem: ${s.authorizationError}`);
  assert.equal(s.alpnProtocol, 'http/1.1');
  const peer = s.getPeerCertificate(true);
  s.destroy();
  assert.equal(peer.subjectaltname, `DNS:${HS_HOST}`);
  const leaf = new crypto.X509Certificate(peer.raw);
  const ca = new crypto.X509Certificate(fs.readFileSync(CA));
  assert.equal(leaf.ca, false, 'the leaf is not a CA');
  assert.ok(leaf.checkIssued(ca), 'issued by the CA in --ca-dir');
  assert.ok(leaf.verify(ca.publicKey), 'signed by the CA key');
  assert.equal(leaf.checkHost(HS_HOST), HS_HOST);
  assert.equal(leaf.checkHost('example.com'), undefined);
  assert.ok(new Date(leaf.validTo) - Date.now() < 400 * 864e5, `short-lived leaf: valid to ${leaf.validTo}`);
});

test('Leaf: without SNI the leaf is minted for the CONNECT host (acme.my.salesforce.com)', { skip: SKIP }, async () => {
  const c = await connect(`${SF_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  const s = await tunnelTls(c.sock, { servername: '' });
  assert.equal(s.authorized, true, `chain verified: ${s.authorizationError}`);
  const peer = s.getPeerCertificate();
  assert.equal(peer.subjectaltname, `DNS:${SF_HOST}`);
  s.write(httpRequest({ host: SF_HOST, token: SF_TOKEN, path: `/services/data/v${VERSION}/sobjects/Account/${ACC}`, close: true }));
  const r = await readResponse(s);
  s.destroy();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.Name, 'Acme Rockets');
});

test('Leaf: openssl s_client -proxy verifies the chain for api.hubapi.com (Verify return code 0) and gets 200', { skip: SKIP || NO_OPENSSL }, async () => {
  const r = await new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', '-proxy', `127.0.0.1:${FWD}`, '-connect', `${HS_HOST}:443`, '-servername', HS_HOST,
      '-CAfile', CA, '-verify_return_error', '-verify_hostname', HS_HOST, '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, 4000);
    p.on('error', reject);
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out, timedOut }); });
    p.stdin.on('error', () => {});
    p.stdin.end(httpRequest({ path: CONTACT_EMAIL, close: true }));
  });
  assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out);
  assert.match(r.out, /subject=.*CN ?= ?api\.hubapi\.com|DNS:api\.hubapi\.com|subject=/, r.out);
  assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
  assert.match(r.out, /ada@fwd\.test/, r.out);
  assert.equal(r.timedOut, false, 's_client -ign_eof: crmgate must close the tunnel after the Connection: close answer (still open after 4 s)');
});

/* ---------------- config file ---------------- */

test('config file {"forward": {"listen": "127.0.0.1:0", "ca_dir": DIR}} starts the forward listener with that CA', { skip: SKIP }, async () => {
  const g = await harness.startCrmgate({
    upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS,
    forward: { via: 'config', caDir: gate.caDir },
  });
  try {
    assert.ok(!g.args.includes('--forward-listen'), 'the forward listener comes from the config file only');
    const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
    c.on('error', () => {});
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    c.write(connectHead(`${HS_HOST}:443`));
    const h = await readHead(c);
    assert.equal(h.status, 200, h.head);
    const s = await tunnelTls(c, { servername: HS_HOST });
    assert.equal(s.authorized, true, 'the leaf chains to the CA given as ca_dir');
    s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
    const r = await readResponse(s);
    s.destroy();
    assert.equal(r.status, 200, r.text);
  } finally {
    await g.stop({ signal: 'SIGKILL' }); /* the drain is tested on its own below */
  }
});

/* ---------------- accept errors ---------------- */

/*
 * EMFILE on the forward listener pauses it for 100 ms: it must come back, not stay paused
 * (the retry once re-enabled only the reverse listener). The fd limit is lowered on the running
 * process with prlimit; not under valgrind, which keeps descriptors of its own.
 */
/*
 * A tunnel whose ClientHello arrives after a SIGHUP swapped the config: its handshake reads the
 * CA and leaf cache of the config it was accepted under, which must still be alive (a freed
 * config here was a use-after-free; make asan catches it if the reference is dropped).
 */
test('a SIGHUP between CONNECT and the ClientHello: the tunnel still handshakes and is served', { skip: SKIP }, async () => {
  /*
   * The config a process starts with stays referenced by main() for good: reload once so the
   * tunnel starts under a reloaded config, which the second reload then drops.
   */
  const reload = async () => {
    const from = gate.stderr().length;
    gate.proc.kill('SIGHUP');
    const t0 = Date.now();
    while (!/configuration reloaded/.test(gate.stderr().slice(from))) {
      assert.ok(Date.now() - t0 < 10000, `no reload line:\n${gate.stderr().slice(-2000)}`);
      await sleep(20);
    }
    /* Fresh tunnels make both workers' loops turn, so each has swapped in the new config. */
    for (let i = 0; i < 4; i++) assert.equal((await viaTunnel({ path: CONTACT_EMAIL })).status, 200);
  };
  await reload();
  const c = await connect(`${HS_HOST}:443`);
  assert.equal(c.status, 200, c.head);
  await reload();
  const s = await tunnelTls(c.sock);
  s.write(httpRequest({ path: CONTACT_EMAIL, close: true }));
  const r = await readResponse(s);
  s.destroy();
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.properties.email, 'ada@fwd.test');
  assert.equal(gate.proc.exitCode, null, 'crmgate is still running');
});

test('an accept error (EMFILE) pauses the forward listener, which then serves again', { skip: SKIP || (process.env.CRMGATE_SLOW ? 'valgrind keeps fds of its own' : false) }, async () => {
  const { execFileSync } = require('node:child_process');
  const g = await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS, forward: { caDir: gate.caDir }, workers: 1 });
  const pid = g.proc.pid;
  const socks = [];
  try {
    const open = fs.readdirSync(`/proc/${pid}/fd`).length;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${open + 1}:`]);
    for (let i = 0; i < 8; i++) {
      const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
      c.on('error', () => {});
      socks.push(c);
    }
    for (let i = 0; i < 100 && !/accept failed/.test(g.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(g.stderr(), /accept failed: Too many open files; pausing the listener/, 'the limit was hit');
    for (const c of socks) c.destroy();
    execFileSync('prlimit', ['--pid', String(pid), '--nofile=4096:']);
    await new Promise((r) => setTimeout(r, 400));
    const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
    c.on('error', () => {});
    socks.push(c);
    await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
    c.write(connectHead(`${HS_HOST}:443`));
    const h = await readHead(c);
    assert.equal(h.status, 200, h.head);
  } finally {
    for (const c of socks) c.destroy();
    await g.stop({ signal: 'SIGKILL' });
  }
});

/* ---------------- shutdown ---------------- */

test('a tunnel the client has closed does not hold up SIGTERM: exit 0 within 3 s', { skip: SKIP }, async () => {
  const g = await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS, forward: { caDir: gate.caDir } });
  let stopped = false;
  try {
    for (const close of [false, true]) {
      const c = net.connect({ host: '127.0.0.1', port: g.forwardPort });
      c.on('error', () => {});
      await new Promise((resolve, reject) => { c.once('connect', resolve); c.once('error', reject); });
      c.write(connectHead(`${HS_HOST}:443`));
      assert.equal((await readHead(c)).status, 200);
      const s = await tunnelTls(c, { servername: HS_HOST });
      s.write(httpRequest({ path: CONTACT_EMAIL, close }));
      assert.equal((await readResponse(s, `GET (Connection: ${close ? 'close' : 'keep-alive'})`)).status, 200);
      s.destroy(); /* the client goes away */
    }
    await sleep(200);
    const t0 = Date.now();
    const code = await g.stop({ graceMs: 3000 }).catch((e) => e.message.split('\n')[0]);
    stopped = true;
    assert.equal(code, 0, `SIGTERM with two closed tunnels (one after Connection: close): ${code} after ${Date.now() - t0} ms`);
  } finally {
    if (!stopped) await g.stop({ signal: 'SIGKILL' });
  }
});

test('crmgate with a forward listener exits 0 on SIGTERM', { skip: SKIP }, async () => {
  gate.stopped = true;
  const code = await gate.stop(); /* the harness throws unless the exit code is 0 */
  assert.equal(code, 0);
});
