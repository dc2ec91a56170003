'use strict';
/*
 * The HTTPS reverse listener end to end (issue 5): crmgate serve --tls-cert/--tls-key (or
 * config {"tls": {"cert", "key"}}) with a throwaway test CA and a 127.0.0.1/localhost server
 * certificate made by the openssl CLI.
 *
 *   - both official SDKs, unmodified (@hubspot/api-client 13.5.0 basePath, jsforce 3.10.16
 *     instanceUrl = https://127.0.0.1:PORT/...), trusting the test CA through NODE_EXTRA_CA_CERTS
 *     (read only at process start, so each SDK scenario runs in a child node): a read, an update
 *     and a policy denial each; without the CA the same SDK fails on the certificate;
 *   - openssl s_client: TLS 1.0/1.1 refused with protocol_version, 1.2/1.3 accepted with a chain
 *     that verifies against the test CA, ALPN http/1.1 only (never h2), session resumption;
 *   - raw TLS: keep-alive, pipelining, clients vanishing without close_notify, plain HTTP on the
 *     HTTPS port;
 *   - SIGHUP certificate rotation, and a broken or mismatched key that keeps the old certificate;
 *   - exit 0 on SIGTERM.
 *
 *   node --test tests/e2e/https_reverse.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const tls = require('node:tls');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
let OPENSSL = false;
try { require('node:child_process').execFileSync('openssl', ['version'], { stdio: 'ignore' }); } catch { OPENSSL = 'openssl CLI not found'; }
const SKIP = GATE || OPENSSL;

const HS_TOKEN = 'pat-na1-7150aaaa-0000-0000-0000-000000000001';
const SF_TOKEN = '00DHs0000000001!AQtlsreversetoken';
const VERSION = '62.0';

function sid(prefix, n) {
  const id15 = prefix + 'Tls0' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}
const ACC = sid('001', 1);
const CON = sid('003', 1);

/* One workspace for both CRMs: HubSpot contacts and Salesforce Accounts; no tickets, no Contact. */
const WORKSPACE = {
  workspace: 'tlsws',
  description: 'e2e: HTTPS reverse listener',
  hubspot: {
    objects: {
      contacts: { read: ['email', 'firstname', 'lastname', 'lifecyclestage'], write: { lifecyclestage: {} } },
    },
  },
  salesforce: {
    objects: {
      Account: { read: ['Name', 'Industry'], write: ['Name'] },
    },
  },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'tlsws', user: 'agent@tls', kind: 'workflow' },
  { token: SF_TOKEN, workspace: 'tlsws', user: 'agent@tls', kind: 'workflow' },
];

const SEED = {
  hubspot: {
    objects: {
      contacts: [{ id: '101', properties: { email: 'ada@tls.test', firstname: 'Ada', lastname: 'Lovelace', lifecyclestage: 'lead', phone: '555' } }],
      tickets: [{ id: '401', properties: { subject: 'Secret ticket', content: 'secret' } }],
    },
  },
  salesforce: {
    objects: {
      Account: [{ Id: ACC, Name: 'Acme Rockets', Industry: 'Aerospace', Phone: '555-0100' }],
      Contact: [{ Id: CON, LastName: 'Seeded', Email: 'sam@tls.test', AccountId: ACC }],
    },
  },
};

let certs; /* {dir, ca, caKey, cert, key} */
let stack;

before(async () => {
  if (SKIP) return;
  certs = harness.makeTestCerts();
  stack = await harness.startStack({
    gate: { tls: { cert: certs.cert, key: certs.key }, rules: { 'tlsws.json': WORKSPACE }, callers: CALLERS },
  });
});

after(async () => {
  if (stack && !stack.stopped) await stack.stop();
});

beforeEach(async () => {
  if (!stack || stack.stopped) return;
  await stack.fake.reset();
  await stack.fake.seed(SEED);
  await stack.fake.clearRequests();
});

/* ---------------- helpers ---------------- */

const fingerprintOf = (file) => new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;

async function fakeLog() {
  return (await stack.fake.requests()).map((r) => `${r.method} ${r.path}`);
}

/* Runs a script in a fresh `node -e` (cwd = repo, so the SDKs resolve) with extra env; parses stdout as JSON. */
function runNode(script, env) {
  const childEnv = { ...process.env };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED', 'HTTPS_PROXY', 'https_proxy',
    'HTTP_PROXY', 'http_proxy', 'NO_PROXY', 'no_proxy', 'NODE_OPTIONS']) delete childEnv[k];
  Object.assign(childEnv, env);
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { cwd: harness.REPO, env: childEnv, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) { reject(new Error(`child node failed: ${err.message}\n${stderr}\n${stdout}`)); return; }
      try { resolve(JSON.parse(stdout)); } catch { reject(new Error(`child node printed no JSON:\n${stdout}\n${stderr}`)); }
    });
  });
}

/* Each step records {ok} or {error} with what the SDKs expose (status code, body, errorCode, network code). */
const STEP = `
const out = {};
const step = async (name, fn) => {
  try { out[name] = { ok: await fn() }; }
  catch (e) {
    const cause = e.cause || {};
    out[name] = { error: { code: e.code, errorCode: e.errorCode, name: e.name, type: e.type, message: String(e.message),
      body: e.body, causeCode: cause.code, causeMessage: cause.message } };
  }
};`;

const HUBSPOT_SCRIPT = `${STEP}
const { Client } = require('@hubspot/api-client');
(async () => {
  const c = new Client({ accessToken: process.env.T_TOKEN, basePath: process.env.T_BASE });
  const steps = process.env.T_STEPS.split(',');
  if (steps.includes('read')) await step('read', async () => (await c.crm.contacts.basicApi.getById('101', ['email', 'lifecyclestage'])).properties);
  if (steps.includes('update')) await step('update', async () => (await c.crm.contacts.basicApi.update('101', { properties: { lifecyclestage: 'customer' } })).properties);
  if (steps.includes('denied')) await step('denied', async () => (await c.crm.tickets.basicApi.getById('401')).properties);
  process.stdout.write(JSON.stringify(out));
})();`;

const SALESFORCE_SCRIPT = `${STEP}
const jsforce = require('jsforce');
(async () => {
  const conn = new jsforce.Connection({ instanceUrl: process.env.T_BASE, accessToken: process.env.T_TOKEN, version: '${VERSION}' });
  const steps = process.env.T_STEPS.split(',');
  if (steps.includes('read')) await step('read', async () => { const r = await conn.sobject('Account').retrieve('${ACC}'); return { Id: r.Id, Name: r.Name, Industry: r.Industry, Phone: r.Phone }; });
  if (steps.includes('update')) await step('update', async () => conn.sobject('Account').update({ Id: '${ACC}', Name: 'Acme via TLS' }));
  if (steps.includes('denied')) await step('denied', async () => { const r = await conn.sobject('Contact').retrieve('${CON}'); return { Id: r.Id }; });
  process.stdout.write(JSON.stringify(out));
})();`;

/* openssl s_client against the gate; input is written then stdin closed. Resolves {code, out} (stdout+stderr). */
function sClient(port, args, input = '') {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`openssl s_client ${args.join(' ')} did not finish:\n${out}`)); }, 10000);
    p.on('error', (e) => { clearTimeout(timer); reject(e); });
    p.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
    p.stdin.on('error', () => {}); /* the handshake may fail before stdin is read */
    p.stdin.end(input);
  });
}

function rawRequest(port, { method = 'GET', p = '/hubspot/crm/v3/objects/contacts/101', token = HS_TOKEN, close = false, body } = {}) {
  const lines = [`${method} ${p} HTTP/1.1`, `Host: 127.0.0.1:${port}`, `Authorization: Bearer ${token}`];
  if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  if (close) lines.push('Connection: close');
  return `${lines.join('\r\n')}\r\n\r\n${body === undefined ? '' : body}`;
}

/* Parses complete HTTP/1.1 responses (Content-Length or chunked) off the front of buf. */
function parseResponses(buf) {
  const responses = [];
  let off = 0;
  for (;;) {
    const he = buf.indexOf('\r\n\r\n', off);
    if (he < 0) break;
    const lines = buf.subarray(off, he).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let p = he + 4;
    let body;
    if (/chunked/i.test(headers['transfer-encoding'] || '')) {
      const parts = [];
      let done = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1'), 16);
        if (size === 0) {
          const te = buf.indexOf('\r\n\r\n', le);
          const te2 = buf.indexOf('\r\n', le + 2);
          if (te2 === le + 2) { p = le + 4; done = true; } else if (te >= 0) { p = te + 4; done = true; }
          break;
        }
        if (buf.length < le + 2 + size + 2) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!done) break;
      body = Buffer.concat(parts);
    } else {
      const n = Number(headers['content-length'] || 0);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n);
      p += n;
    }
    responses.push({ status, headers, body: body.toString('utf8') });
    off = p;
  }
  return responses;
}

/* A TLS connection to the gate that trusts the test CA (and checks 127.0.0.1 against the SAN). */
function tlsConnect(port, opts = {}) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(opts.ca || certs.ca), ALPNProtocols: ['http/1.1'], ...opts.tls }, () => resolve(s));
    s.once('error', reject);
  });
}

/* Collects data until `n` complete responses arrived; rejects on close or after 5 s. */
function readResponses(sock, n) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseResponses(buf);
      if (r.length >= n) { cleanup(); resolve(r); }
    };
    const onEnd = () => { cleanup(); reject(new Error(`connection ended after ${parseResponses(buf).length}/${n} responses:\n${buf.toString('latin1').slice(0, 2000)}`)); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timeout after ${parseResponses(buf).length}/${n} responses`)); }, 5000);
    function cleanup() { clearTimeout(timer); sock.off('data', onData); sock.off('end', onEnd); sock.off('close', onEnd); }
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
  });
}

/* Resolves when the socket has ended/closed, with every byte it received (rejects after ms). */
function untilClosed(sock, ms = 5000) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    sock.on('data', (d) => chunks.push(d));
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`still open after ${ms} ms; got ${Buffer.concat(chunks).toString('latin1').slice(0, 500)}`)); }, ms);
    sock.once('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
    sock.on('error', () => {});
  });
}

/* One full TLS round trip: new connection, GET contact 101, close. Returns {status, fingerprint}. */
async function probe(port, opts = {}) {
  const s = await tlsConnect(port, opts);
  const fingerprint = s.getPeerCertificate().fingerprint256;
  s.write(rawRequest(port, { close: true }));
  const [r] = await readResponses(s, 1);
  s.destroy();
  return { status: r.status, fingerprint, body: r.body };
}

function waitLog(gate, re, fromOffset, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const keepAlive = setInterval(() => {
      const m = re.exec(gate.stderr().slice(fromOffset));
      if (m) { clearInterval(keepAlive); resolve(m); } else if (Date.now() - t0 > ms) {
        clearInterval(keepAlive);
        reject(new Error(`no log line ${re} within ${ms} ms; stderr tail:\n${gate.stderr().slice(-2000)}`));
      }
    }, 20);
  });
}

async function assertAlive() {
  assert.equal(stack.gate.proc.exitCode, null, 'crmgate is still running');
  assert.equal(stack.gate.proc.signalCode, null, 'crmgate was not killed by a signal');
  const r = await probe(stack.gate.port);
  assert.equal(r.status, 200, `a fresh TLS connection is still served: ${r.body}`);
}

/* ---------------- startup ---------------- */

test('ready line reports https, URLs are https://', { skip: SKIP }, () => {
  assert.match(stack.gate.stderr(), /reverse listener on 127\.0\.0\.1:\d+ \(https, 2 workers\)/);
  assert.ok(stack.hubspotBase.startsWith('https://127.0.0.1:'), stack.hubspotBase);
  assert.ok(stack.salesforceBase.startsWith('https://127.0.0.1:'), stack.salesforceBase);
});

/* ---------------- SDKs ---------------- */

test('Reverse HTTPS: @hubspot/api-client with NODE_EXTRA_CA_CERTS reads, updates and is denied', { skip: SKIP }, async () => {
  const t = await runNode(HUBSPOT_SCRIPT, { NODE_EXTRA_CA_CERTS: certs.ca, T_BASE: stack.hubspotBase, T_TOKEN: HS_TOKEN, T_STEPS: 'read,update,denied' });
  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.equal(t.read.ok.email, 'ada@tls.test');
  assert.equal(t.read.ok.lifecyclestage, 'lead');
  assert.equal(t.read.ok.phone, undefined, 'phone is not readable: the answer filter applies over HTTPS');
  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  assert.equal(t.update.ok.lifecyclestage, 'customer');
  assert.ok(t.denied.error, `tickets must be denied: ${JSON.stringify(t.denied)}`);
  assert.equal(t.denied.error.code, 403, JSON.stringify(t.denied.error));
  assert.equal(t.denied.error.body.subCategory, 'crmgate.policy_denied', JSON.stringify(t.denied.error.body));

  const st = (await stack.fake.state()).hubspot;
  assert.equal(st.objects.contacts.find((r) => r.id === '101').properties.lifecyclestage, 'customer', 'the update reached the fake');
  const log = await fakeLog();
  assert.ok(log.some((l) => /^GET \/crm\/v3\/objects\/contacts\/101/.test(l)), log.join('\n'));
  assert.ok(log.some((l) => /^PATCH \/crm\/v3\/objects\/contacts\/101/.test(l)), log.join('\n'));
  assert.ok(!log.some((l) => /tickets/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);
});

test('Reverse HTTPS: jsforce with NODE_EXTRA_CA_CERTS reads, updates and is denied', { skip: SKIP }, async () => {
  const t = await runNode(SALESFORCE_SCRIPT, { NODE_EXTRA_CA_CERTS: certs.ca, T_BASE: stack.salesforceBase, T_TOKEN: SF_TOKEN, T_STEPS: 'read,update,denied' });
  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.equal(t.read.ok.Id, ACC);
  assert.equal(t.read.ok.Name, 'Acme Rockets');
  assert.equal(t.read.ok.Industry, 'Aerospace');
  assert.equal(t.read.ok.Phone, undefined, 'Phone is not readable: the answer filter applies over HTTPS');
  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  assert.equal(t.update.ok.success, true, JSON.stringify(t.update.ok));
  assert.ok(t.denied.error, `Contact must be denied: ${JSON.stringify(t.denied)}`);
  assert.equal(t.denied.error.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY', JSON.stringify(t.denied.error));
  assert.match(t.denied.error.message, /crmgate/);

  const st = (await stack.fake.state()).salesforce;
  const accs = st.objects.Account;
  const acc = (Array.isArray(accs) ? accs : Object.values(accs)).find((r) => r.Id === ACC);
  assert.equal(acc.Name, 'Acme via TLS', 'the update reached the fake');
  const log = await fakeLog();
  assert.ok(log.some((l) => l.startsWith(`GET /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(log.some((l) => l.startsWith(`PATCH /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(!log.some((l) => /Contact/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);
});

function assertCertError(err, what) {
  assert.ok(err, `${what}: the call must fail without the test CA`);
  const text = [err.code, err.causeCode, err.message, err.causeMessage].join(' ');
  assert.match(text, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify the first certificate|certificate/i, `${what}: ${JSON.stringify(err)}`);
}

test('Reverse HTTPS: without NODE_EXTRA_CA_CERTS both SDKs fail on the certificate and nothing reaches the CRM', { skip: SKIP }, async () => {
  const [h, s] = await Promise.all([
    runNode(HUBSPOT_SCRIPT, { T_BASE: stack.hubspotBase, T_TOKEN: HS_TOKEN, T_STEPS: 'read' }),
    runNode(SALESFORCE_SCRIPT, { T_BASE: stack.salesforceBase, T_TOKEN: SF_TOKEN, T_STEPS: 'read' }),
  ]);
  assertCertError(h.read.error, '@hubspot/api-client');
  assertCertError(s.read.error, 'jsforce');
  assert.deepEqual(await fakeLog(), []);
});

/* ---------------- openssl s_client ---------------- */

for (const v of ['tls1', 'tls1_1']) {
  test(`openssl s_client: -${v} is refused with a protocol_version alert`, { skip: SKIP }, async () => {
    /* SECLEVEL=0 so that the client really offers the old version (OpenSSL 3 would not otherwise). */
    const r = await sClient(stack.gate.port, [`-${v}`, '-cipher', 'DEFAULT@SECLEVEL=0', '-msg']);
    const label = v === 'tls1' ? 'TLS 1.0' : 'TLS 1.1';
    assert.match(r.out, new RegExp(`>>> ${label}, Handshake \\[length [0-9a-f]+\\], ClientHello`), `the client offered ${label}:\n${r.out}`);
    assert.match(r.out, /<<< TLS 1\.[01], Alert \[length 0002\], fatal protocol_version/, r.out);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.out, /^(New|Reused), TLS/m, 'no session was established');
  });
}

for (const [v, proto] of [['tls1_2', 'TLSv1.2'], ['tls1_3', 'TLSv1.3']]) {
  test(`openssl s_client: -${v} is accepted, the chain verifies against the test CA, HTTP/1.1 works`, { skip: SKIP }, async () => {
    const r = await sClient(stack.gate.port, [`-${v}`, '-CAfile', certs.ca, '-verify_return_error', '-verify_ip', '127.0.0.1', '-ign_eof'],
      rawRequest(stack.gate.port, { close: true }));
    assert.match(r.out, new RegExp(`^New, ${proto.replace('.', '\\.')}, Cipher is `, 'm'), r.out);
    assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out);
    assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
    assert.match(r.out, /ada@tls\.test/, r.out);
  });
}

test('openssl s_client: a wrong CA does not verify the chain (the listener serves the configured cert)', { skip: SKIP }, async () => {
  const other = harness.makeTestCerts();
  const r = await sClient(stack.gate.port, ['-CAfile', other.ca, '-verify_return_error']);
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /unable to verify the first certificate|unable to get local issuer certificate/, r.out);
  const x = await sClient(stack.gate.port, ['-CAfile', certs.ca, '-showcerts'], '');
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(x.out);
  assert.ok(pem, x.out);
  assert.equal(new crypto.X509Certificate(pem[0]).fingerprint256, fingerprintOf(certs.cert));
});

test('openssl s_client: ALPN h2,http/1.1 selects http/1.1', { skip: SKIP }, async () => {
  const r = await sClient(stack.gate.port, ['-alpn', 'h2,http/1.1', '-CAfile', certs.ca, '-ign_eof'], rawRequest(stack.gate.port, { close: true }));
  assert.match(r.out, /^ALPN protocol: http\/1\.1$/m, r.out);
  assert.doesNotMatch(r.out, /ALPN protocol: h2/, r.out);
  assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
});

test('openssl s_client: ALPN h2 alone selects nothing (never h2) and HTTP/1.1 still works', { skip: SKIP }, async () => {
  const r = await sClient(stack.gate.port, ['-alpn', 'h2', '-CAfile', certs.ca, '-ign_eof'], rawRequest(stack.gate.port, { close: true }));
  assert.match(r.out, /^No ALPN negotiated$/m, r.out);
  assert.doesNotMatch(r.out, /ALPN protocol: h2/, r.out);
  assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
  /* The same from Node: no protocol selected. */
  const s = await tlsConnect(stack.gate.port, { tls: { ALPNProtocols: ['h2'] } });
  assert.equal(s.alpnProtocol, false);
  s.destroy();
});

for (const [v, proto] of [['tls1_2', 'TLSv1.2'], ['tls1_3', 'TLSv1.3']]) {
  test(`session resumption (${proto}): -sess_in connections are Reused, repeatedly (both workers)`, { skip: SKIP }, async () => {
    const sess = path.join(certs.dir, `sess-${v}.pem`);
    const first = await sClient(stack.gate.port, [`-${v}`, '-CAfile', certs.ca, '-ign_eof', '-sess_out', sess], rawRequest(stack.gate.port, { close: true }));
    assert.match(first.out, /^New, /m, first.out);
    assert.ok(fs.existsSync(sess), `a session was saved:\n${first.out}`);
    for (let i = 0; i < 6; i++) {
      const r = await sClient(stack.gate.port, [`-${v}`, '-CAfile', certs.ca, '-ign_eof', '-sess_in', sess], rawRequest(stack.gate.port, { close: true }));
      assert.match(r.out, new RegExp(`^Reused, ${proto.replace('.', '\\.')}, `, 'm'), `resumption #${i + 1}:\n${r.out}`);
      assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
    }
  });
}

test('session resumption from Node: tls.connect({session}) reuses it on 6 connections', { skip: SKIP }, async () => {
  const first = await tlsConnect(stack.gate.port);
  let session;
  first.on('session', (sess) => { session = sess; });
  first.write(rawRequest(stack.gate.port, { close: true }));
  assert.equal((await readResponses(first, 1))[0].status, 200);
  first.destroy();
  assert.ok(session, 'the server sent a session ticket');
  for (let i = 0; i < 6; i++) {
    const s = await tlsConnect(stack.gate.port, { tls: { session } });
    assert.equal(s.isSessionReused(), true, `connection #${i + 1} resumed`);
    s.write(rawRequest(stack.gate.port, { close: true }));
    const [r] = await readResponses(s, 1);
    assert.equal(r.status, 200);
    s.destroy();
  }
});

/* ---------------- raw TLS ---------------- */

test('keep-alive over TLS: three sequential requests on one connection', { skip: SKIP }, async () => {
  const s = await tlsConnect(stack.gate.port);
  assert.equal(s.alpnProtocol, 'http/1.1');
  for (let i = 0; i < 3; i++) {
    s.write(rawRequest(stack.gate.port));
    const [r] = await readResponses(s, 1);
    assert.equal(r.status, 200, `request #${i + 1}: ${r.body}`);
    assert.equal(JSON.parse(r.body).id, '101');
  }
  s.end();
  assert.equal((await fakeLog()).length, 3);
});

test('pipelining over TLS: four requests in one write, four answers in order', { skip: SKIP }, async () => {
  const s = await tlsConnect(stack.gate.port);
  const port = stack.gate.port;
  const P = '/hubspot/crm/v3/objects/contacts/101?properties=lifecyclestage';
  s.write(rawRequest(port, { p: P }) +
    rawRequest(port, { method: 'PATCH', body: JSON.stringify({ properties: { lifecyclestage: 'opportunity' } }) }) +
    rawRequest(port, { p: '/hubspot/crm/v3/objects/tickets/401' }) +
    rawRequest(port, { p: P, close: true }));
  const rs = await readResponses(s, 4);
  assert.deepEqual(rs.map((r) => r.status), [200, 200, 403, 200], rs.map((r) => r.body).join('\n'));
  assert.equal(JSON.parse(rs[0].body).properties.lifecyclestage, 'lead');
  assert.equal(JSON.parse(rs[1].body).properties.lifecyclestage, 'opportunity');
  assert.equal(JSON.parse(rs[3].body).properties.lifecyclestage, 'opportunity', 'the answers come in request order');
  await untilClosed(s);
});

test('client vanishing without close_notify mid-request (FIN and RST) does not disturb crmgate', { skip: SKIP }, async () => {
  const port = stack.gate.port;
  const other = await tlsConnect(port); /* an innocent keep-alive client across the whole test */
  other.write(rawRequest(port));
  assert.equal((await readResponses(other, 1))[0].status, 200);

  for (const how of ['fin-head', 'fin-body', 'rst-head', 'rst-body']) {
    const tcp = net.connect({ host: '127.0.0.1', port });
    await new Promise((resolve, reject) => { tcp.once('connect', resolve); tcp.once('error', reject); });
    const s = await new Promise((resolve, reject) => {
      const t = tls.connect({ socket: tcp, ca: fs.readFileSync(certs.ca), ALPNProtocols: ['http/1.1'] }, () => resolve(t));
      t.once('error', reject);
    });
    s.on('error', () => {});
    const full = rawRequest(port, { method: 'PATCH', body: JSON.stringify({ properties: { lifecyclestage: 'evangelist' } }) });
    const cut = how.endsWith('head') ? full.indexOf('\r\n\r\n') - 10 : full.length - 5;
    await new Promise((resolve) => s.write(full.slice(0, cut), resolve));
    await new Promise((r) => setTimeout(r, 50));
    /* Under the TLS layer: no close_notify is ever sent. */
    if (how.startsWith('rst')) tcp.resetAndDestroy(); else tcp.end();
    await new Promise((r) => setTimeout(r, 50));
    tcp.destroy();
  }

  other.write(rawRequest(port));
  assert.equal((await readResponses(other, 1))[0].status, 200, 'the other keep-alive client is still served');
  other.destroy();
  await assertAlive();
  const log = await fakeLog();
  assert.ok(!log.some((l) => l.startsWith('PATCH')), `no truncated request was forwarded:\n${log.join('\n')}`);
  assert.equal((await stack.fake.state()).hubspot.objects.contacts.find((r) => r.id === '101').properties.lifecyclestage, 'lead');
});

test('plain HTTP sent to the HTTPS port is refused, nothing reaches the CRM, crmgate keeps serving', { skip: SKIP }, async () => {
  const sock = net.connect({ host: '127.0.0.1', port: stack.gate.port });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  sock.write(rawRequest(stack.gate.port, { close: true }));
  const got = await untilClosed(sock);
  const text = got.toString('latin1');
  /* Either a bare close, a TLS alert record (content type 21), or an HTTP 400: never an answer. */
  assert.ok(got.length === 0 || got[0] === 0x15 || /^HTTP\/1\.[01] 4\d\d /.test(text),
    `unexpected bytes: ${got.toString('hex').slice(0, 200)}`);
  assert.doesNotMatch(text, /ada@tls\.test/);
  assert.deepEqual(await fakeLog(), []);
  await assertAlive();
});

/* ---------------- TLS closing: close_notify, and clients that vanish ---------------- */


for (const [v, proto] of [['tls1_2', 'TLSv1.2'], ['tls1_3', 'TLSv1.3']]) {
  test(`"Connection: close" over ${proto} ends with close_notify (no unexpected EOF for the client)`, { skip: SKIP }, async () => {
    const r = await sClient(stack.gate.port, [`-${v}`, '-CAfile', certs.ca, '-ign_eof'], rawRequest(stack.gate.port, { close: true }));
    assert.match(r.out, /^HTTP\/1\.1 200 /m, r.out);
    assert.doesNotMatch(r.out, /unexpected eof while reading/, 'crmgate closed the TCP connection without sending close_notify');
    assert.equal(r.code, 0, r.out.slice(-500));
  });
}

test('a TLS client that sends a whole request and closes without reading is released (SIGTERM drains at once)', { skip: SKIP }, async () => {
  const gate = await harness.startCrmgate({
    tls: { cert: certs.cert, key: certs.key },
    upstreams: { hubspot: stack.fake.url, salesforce: stack.fake.url },
    rules: { 'tlsws.json': WORKSPACE },
    callers: CALLERS,
    config: { drain_timeout_ms: 1500, limits: { idle_timeout_ms: 1000, write_timeout_ms: 1000, header_timeout_ms: 1000 } },
  });
  let stopped = false;
  try {
    for (let i = 0; i < 5; i++) {
      const s = await tlsConnect(gate.port);
      s.on('error', () => {});
      s.write(rawRequest(gate.port));
      s.destroy(); /* no close_notify, the answer is never read */
      await new Promise((r) => setTimeout(r, 30));
    }
    /* Well past the idle, write and header timeouts: every one of those connections is gone. */
    await new Promise((r) => setTimeout(r, 2000));
    const t0 = Date.now();
    const code = await gate.stop();
    stopped = true;
    assert.equal(code, 0);
    const left = /drain deadline reached with \d+ connections left/.exec(gate.stderr());
    assert.equal(left, null, `connections still held after their timeouts (SIGTERM took ${Date.now() - t0} ms): ${left && left[0]}`);
  } finally {
    if (!stopped) await gate.stop().catch(() => {});
  }
});

/* ---------------- SIGHUP rotation ---------------- */

/*
 * A second crmgate whose certificate files are rewritten in place: `mode` 'config' gives them
 * in the config file ({"tls": {...}}), 'flags' with --tls-cert/--tls-key.
 */
for (const mode of ['config', 'flags']) {
  test(`SIGHUP certificate rotation (${mode}): new cert on new connections; a broken or mismatched key keeps the old one`, { skip: SKIP }, async () => {
    const dir = path.join(certs.dir, `rotate-${mode}`);
    const c1 = harness.makeTestCerts({ dir, ca: { cert: certs.ca, key: certs.caKey } });
    const tlsFiles = { cert: c1.cert, key: c1.key };
    const gate = await harness.startCrmgate({
      upstreams: { hubspot: stack.fake.url, salesforce: stack.fake.url },
      rules: { 'tlsws.json': WORKSPACE },
      callers: CALLERS,
      ...(mode === 'config' ? { config: { tls: tlsFiles } } : { tls: tlsFiles }),
    });
    assert.ok(gate.url.startsWith('https://'), gate.url);
    if (mode === 'config') assert.ok(!gate.args.includes('--tls-cert'), 'TLS comes from the config file only');
    try {
      const port = gate.port;
      const fp1 = fingerprintOf(c1.cert);
      assert.equal((await probe(port)).fingerprint, fp1);

      /* 1. a new key pair written into the same paths, then SIGHUP */
      harness.makeTestCerts({ dir, ca: { cert: certs.ca, key: certs.caKey } });
      const fp2 = fingerprintOf(c1.cert);
      assert.notEqual(fp2, fp1);
      let off = gate.stderr().length;
      gate.proc.kill('SIGHUP');
      await waitLog(gate, /configuration reloaded/, off);
      /* Workers pick the new config up asynchronously: allow a short while for the first one. */
      const t0 = Date.now();
      let r = await probe(port);
      while (r.fingerprint !== fp2 && Date.now() - t0 < 1000) {
        await new Promise((res) => setTimeout(res, 50));
        r = await probe(port);
      }
      assert.equal(r.fingerprint, fp2, 'the next connection sees the new certificate');
      for (let i = 0; i < 6; i++) {
        const x = await probe(port);
        assert.equal(x.fingerprint, fp2, `connection #${i + 1} after the reload (every worker) sees the new certificate`);
        assert.equal(x.status, 200, x.body);
      }
      const v = await sClient(port, ['-CAfile', certs.ca, '-verify_return_error', '-verify_ip', '127.0.0.1']);
      assert.match(v.out, /Verify return code: 0 \(ok\)/, v.out);

      /* 2. a broken key file: the reload fails, the current certificate stays */
      fs.writeFileSync(c1.key, '-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n');
      off = gate.stderr().length;
      gate.proc.kill('SIGHUP');
      const m = await waitLog(gate, /reload failed, keeping the current configuration: ([^\n]*)/, off);
      assert.match(m[1], /tls key/, m[0]);
      assert.ok(m[1].includes(c1.key), `the log names the file: ${m[0]}`);
      for (let i = 0; i < 4; i++) {
        const x = await probe(port);
        assert.equal(x.fingerprint, fp2, 'still the previous certificate');
        assert.equal(x.status, 200, x.body);
      }

      /* 3. a valid key that does not match the certificate: also refused */
      const stray = harness.makeTestCerts({ dir: path.join(dir, 'stray'), ca: { cert: certs.ca, key: certs.caKey } });
      fs.copyFileSync(stray.key, c1.key);
      off = gate.stderr().length;
      gate.proc.kill('SIGHUP');
      const m2 = await waitLog(gate, /reload failed, keeping the current configuration: ([^\n]*)/, off);
      assert.match(m2[1], /tls key .*(key values mismatch|does not match)/, m2[0]);
      assert.equal((await probe(port)).fingerprint, fp2);
      assert.equal(gate.proc.exitCode, null);
    } finally {
      await gate.stop();
    }
  });
}

/* ---------------- shutdown ---------------- */

test('crmgate (HTTPS) exits 0 on SIGTERM', { skip: SKIP }, async () => {
  const code = await stack.stop(); /* the harness throws unless the exit code is 0 */
  stack.stopped = true;
  assert.equal(code, 0);
});
