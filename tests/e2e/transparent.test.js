'use strict';
/*
 * The transparent listener end to end (issue 5): crmgate serve --transparent-listen
 * 127.0.0.1:PORT --ca-dir DIR (or the config's {"transparent": {"listen", "ca_dir"}}) takes
 * connections that iptables REDIRECT sent to it, terminates TLS from the first byte with a leaf
 * minted for the client's SNI (allow-listed CRM hosts only), and runs the requests through the
 * same pipeline as every other mode.
 *
 * Everything runs inside a network namespace the suite creates (cg-<random>) and removes:
 *   - 10.253.0.1/32 on the namespace's lo (the "CRM" address; dummy interfaces are not needed);
 *   - /etc/netns/NS/hosts maps api.hubapi.com, acme.my.salesforce.com and example.com to it
 *     (and loop.my.salesforce.com to 10.253.0.2, for the loop test);
 *   - iptables -t nat OUTPUT: tcp to 10.253.0.1:443 -> REDIRECT to crmgate's transparent port;
 *   - the fake CRM, crmgate (upstreams overridden to the fake) and every client run in it via
 *     `ip netns exec`; the test process controls the fake through a Unix socket relay.
 * The namespace has no interface but lo, so nothing can leave it: no traffic to the real CRMs.
 *
 * Clients are unmodified, configured only with NODE_EXTRA_CA_CERTS / --cacert: @hubspot/api-client
 * with its default base URL (https://api.hubapi.com), jsforce with instanceUrl
 * https://acme.my.salesforce.com, curl, openssl s_client.
 *
 * Needs root, ip and iptables; skipped otherwise (CI runs as root).
 *
 *   node --test tests/e2e/transparent.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { execFile, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

function have(cmd, args = ['--version']) {
  try { execFileSync(cmd, args, { stdio: 'ignore' }); return true; } catch { return false; }
}

const SKIP = (() => {
  if (!harness.crmgateAvailable()) return `crmgate binary not built (${harness.crmgateBinary()})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespace and iptables)';
  if (!have('ip', ['-V'])) return 'ip (iproute2) not installed';
  if (!have('iptables', ['--version'])) return 'iptables not installed';
  return false;
})();
const NO_CURL = !have('curl') && 'curl not installed';
const NO_OPENSSL = !have('openssl', ['version']) && 'openssl CLI not found';

const NS = `cg-${crypto.randomBytes(5).toString('hex')}`;
const NS_ETC = `/etc/netns/${NS}`;
const CRM_IP = '10.253.0.1';
const CRM_IP2 = '10.253.0.2';   /* redirected to the config-file crmgate */
const TP = 20000 + crypto.randomInt(20000);  /* the transparent port: any port is free in a fresh namespace */
const TP2 = TP + 1;

const HS_HOST = 'api.hubapi.com';
const SF_HOST = 'acme.my.salesforce.com';
const LOOP_HOST = 'loop.my.salesforce.com'; /* resolves to CRM_IP2: redirected to a second crmgate */
const VERSION = '62.0';
const HS_TOKEN = 'pat-na1-7a0a7a0a-0000-0000-0000-000000000001'; /* registered: workspace tpws */
const SF_TOKEN = '00DHs0000000001!AQtransparenttoken';           /* registered: workspace tpws */

function sid(prefix, n) {
  const id15 = prefix + 'Tpx0' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}
const ACC = sid('001', 1);
const CON = sid('003', 1);

const RULES = {
  'tpws.json': {
    workspace: 'tpws',
    description: 'e2e: transparent interception',
    hubspot: { objects: { contacts: { read: ['email', 'firstname', 'lastname', 'lifecyclestage'], write: { lifecyclestage: {} } } } },
    salesforce: { objects: { Account: { read: ['Name', 'Industry'], write: ['Name'] } } },
  },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'tpws', user: 'agent@tp', kind: 'workflow' },
  { token: SF_TOKEN, workspace: 'tpws', user: 'agent@tp', kind: 'workflow' },
];

const SEED = {
  hubspot: {
    objects: {
      contacts: [{ id: '101', properties: { email: 'ada@tp.test', firstname: 'Ada', lastname: 'Lovelace', lifecyclestage: 'lead', phone: '555' } }],
      tickets: [{ id: '401', properties: { subject: 'Secret ticket', content: 'secret' } }],
    },
  },
  salesforce: {
    objects: {
      Account: [{ Id: ACC, Name: 'Acme Rockets', Industry: 'Aerospace', Phone: '555-0100' }],
      Contact: [{ Id: CON, LastName: 'Seeded', Email: 'sam@tp.test', AccountId: ACC }],
    },
  },
};

/* ---------------- the namespace ---------------- */

let nsCreated = false;
let nsRemoved = false;

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr ? e.stderr.toString() : e.message}`);
  }
}
const inNs = (cmd, ...args) => sh('ip', ['netns', 'exec', NS, cmd, ...args]);

function createNetns() {
  sh('ip', ['netns', 'add', NS]);
  nsCreated = true;
  fs.mkdirSync(NS_ETC, { recursive: true });
  fs.writeFileSync(`${NS_ETC}/hosts`, `127.0.0.1 localhost\n${CRM_IP} ${HS_HOST} ${SF_HOST} example.com\n${CRM_IP2} ${LOOP_HOST}\n`);
  inNs('ip', 'link', 'set', 'lo', 'up');
  inNs('ip', 'addr', 'add', `${CRM_IP}/32`, 'dev', 'lo');
  inNs('ip', 'addr', 'add', `${CRM_IP2}/32`, 'dev', 'lo');
  inNs('iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', CRM_IP, '--dport', '443', '-j', 'REDIRECT', '--to-ports', String(TP));
  inNs('iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-d', CRM_IP2, '--dport', '443', '-j', 'REDIRECT', '--to-ports', String(TP2));
}

/* Idempotent and synchronous, so the process 'exit' hook can use it too. */
function removeNetns() {
  if (!nsCreated || nsRemoved) return;
  try { execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' }); } catch { /* already gone */ }
  try { fs.rmSync(NS_ETC, { recursive: true, force: true }); } catch { /* best effort */ }
  nsRemoved = true;
}
/* The harness's own exit hook (registered first) SIGKILLs the children; then the namespace goes. */
process.on('exit', removeNetns);

/* ---------------- the stack ---------------- */

let fake;
let gate;
let CA;
let VAULT_DIR; /* the vault key for the crmgate-key test (credential custody) */

before(async () => {
  if (SKIP) return;
  createNetns();
  fake = await harness.startFake({ netns: NS });
  VAULT_DIR = fs.mkdtempSync('/tmp/crmgate-tp-vault-');
  execFileSync(harness.crmgateBinary(), ['vault', 'keygen', '--out', `${VAULT_DIR}/vault.key`], { stdio: 'ignore' });
  gate = await harness.startCrmgate({
    netns: NS,
    upstreams: { hubspot: fake.url, salesforce: fake.url },
    rules: RULES,
    callers: CALLERS,
    transparent: { listen: `127.0.0.1:${TP}` },
    args: ['--vault-key', `${VAULT_DIR}/vault.key`],
  });
  CA = gate.caCert;
});

after(async () => {
  try {
    if (gate && !gate.stopped) await gate.stop({ signal: 'SIGKILL' });
    if (fake) await fake.stop();
  } finally {
    removeNetns();
    if (VAULT_DIR) fs.rmSync(VAULT_DIR, { recursive: true, force: true });
  }
});

beforeEach(async () => {
  if (!fake || nsRemoved) return;
  await fake.reset();
  await fake.seed(SEED);
  await fake.clearRequests();
});

/* ---------------- helpers ---------------- */

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function fakeLog() {
  return (await fake.requests()).map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''}`);
}

function cleanEnv(extra) {
  const env = { ...process.env };
  for (const k of ['NODE_EXTRA_CA_CERTS', 'NODE_TLS_REJECT_UNAUTHORIZED', 'HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY',
    'http_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy', 'NODE_OPTIONS', 'SSL_CERT_FILE', 'SSL_CERT_DIR',
    'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_USE_ENV_PROXY']) delete env[k];
  return Object.assign(env, extra);
}

/* Runs a program inside the namespace (cwd = repo); resolves {code, stdout, stderr}; never rejects on a non-zero exit. */
function runNs(cmd, args, env, { input, timeout = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const p = execFile('ip', ['netns', 'exec', NS, cmd, ...args], { cwd: harness.REPO, env: cleanEnv(env), timeout, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        if (err && err.killed) { reject(new Error(`${cmd} timed out:\n${stderr}\n${stdout}`)); return; }
        resolve({ code: err ? err.code : 0, stdout, stderr });
      });
    p.stdin.on('error', () => {});
    p.stdin.end(input === undefined ? '' : input);
  });
}

async function runNodeJson(script, env) {
  const r = await runNs(process.execPath, ['-e', script], env);
  try { return JSON.parse(r.stdout); } catch { throw new Error(`node printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`); }
}

/* curl inside the namespace; resolves {exit, status, headers, text, json, stderr}. */
async function curl(args) {
  const r = await runNs('curl', ['-sS', '-i', '--max-time', '10', '-w', '\n__CURL__ %{http_code}', ...args], {});
  const m = /\n__CURL__ (\d+)$/.exec(r.stdout);
  const out = r.stdout.slice(0, m ? m.index : undefined);
  const i = out.indexOf('\r\n\r\n');
  const headers = {};
  for (const l of out.slice(0, Math.max(i, 0)).split('\r\n').slice(1)) { const c = l.indexOf(':'); headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim(); }
  const text = i >= 0 ? out.slice(i + 4) : '';
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { exit: r.code, status: m ? Number(m[1]) : null, headers, text, json, stderr: r.stderr };
}

/* crmgate's stderr written after `mark` (a length of gate.stderr()), once it has had a moment to flush. */
async function logSince(mark, settleMs = 200) {
  await sleep(settleMs);
  return gate.stderr().slice(mark);
}

/* A refused interception: nothing reached the fake, and crmgate logged the refusal. */
async function assertRefusedAndNothingForwarded(what, mark, sniPattern) {
  const log = await logSince(mark);
  assert.deepEqual(await fakeLog(), [], `${what}: nothing may reach the (fake) CRM`);
  assert.match(log, /intercept: refused a TLS handshake/, `${what}: crmgate must log the refusal; its log since:\n${log}`);
  if (sniPattern) assert.match(log, sniPattern, `${what}: the refusal names the SNI; log since:\n${log}`);
  assert.doesNotMatch(log, /"(GET|POST|PATCH|PUT|DELETE) /, `${what}: no request may have been handled; log since:\n${log}`);
}

const CONTACT_EMAIL = '/crm/v3/objects/contacts/101?properties=email';

/* ---------------- startup ---------------- */

test('transparent listener: ready line "transparent listener on 127.0.0.1:PORT" inside the namespace', { skip: SKIP }, () => {
  assert.match(gate.stderr(), new RegExp(`transparent listener on 127\\.0\\.0\\.1:${TP}\\b`), gate.stderr());
  assert.equal(gate.transparentPort, TP);
  assert.match(gate.stderr(), /reverse listener on 127\.0\.0\.1:\d+/, 'the reverse listener runs beside it');
  assert.ok(fs.existsSync(CA), CA);
  const nat = inNs('iptables', '-t', 'nat', '-S', 'OUTPUT');
  assert.match(nat, new RegExp(`-d ${CRM_IP.replace(/\./g, '\\.')}/32 -p tcp -m tcp --dport 443 -j REDIRECT --to-ports ${TP}`), nat);
});

/* ---------------- real clients, default base URLs ---------------- */

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

/* @hubspot/api-client 13.5 with no basePath: https://api.hubapi.com, resolved by the namespace's hosts file. */
const HUBSPOT_SCRIPT = `${STEP}
const { Client } = require('@hubspot/api-client');
(async () => {
  const hs = new Client({ accessToken: process.env.T_TOKEN });
  await step('read', async () => { const r = await hs.crm.contacts.basicApi.getById('101', ['email', 'firstname']); return { id: r.id, properties: r.properties }; });
  await step('update', async () => { const r = await hs.crm.contacts.basicApi.update('101', { properties: { lifecyclestage: 'customer' } }); return { id: r.id, lifecyclestage: r.properties.lifecyclestage }; });
  await step('denied', async () => { const r = await hs.crm.tickets.basicApi.getById('401'); return { id: r.id }; });
  process.stdout.write(JSON.stringify(out));
})();`;

test('Transparent: @hubspot/api-client with its default base URL (https://api.hubapi.com) reads (filtered), updates, is denied (403)', { skip: SKIP }, async () => {
  const mark = gate.stderr().length;
  const t = await runNodeJson(HUBSPOT_SCRIPT, { NODE_EXTRA_CA_CERTS: CA, T_TOKEN: HS_TOKEN });

  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.equal(t.read.ok.id, '101');
  /* The fake adds createdate, hs_object_id and lastmodifieddate; the workspace reads none of them. */
  assert.deepEqual(t.read.ok.properties, { email: 'ada@tp.test', firstname: 'Ada' }, `filtered answer: ${JSON.stringify(t.read.ok)}`);

  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  const c = (await fake.state()).hubspot.objects.contacts;
  const ada = (Array.isArray(c) ? c : Object.values(c)).find((x) => String(x.id) === '101');
  assert.equal(ada.properties.lifecyclestage, 'customer', 'the update reached the fake');

  assert.ok(t.denied.error, `tickets must be denied: ${JSON.stringify(t.denied)}`);
  assert.equal(t.denied.error.code, 403, JSON.stringify(t.denied.error));
  assert.equal((t.denied.error.body || {}).subCategory, 'crmgate.policy_denied', JSON.stringify(t.denied.error.body));

  const log = await fakeLog();
  assert.ok(log.some((l) => l.startsWith('GET /crm/v3/objects/contacts/101')), `the read reached the fake:\n${log.join('\n')}`);
  assert.ok(log.some((l) => l.startsWith('PATCH /crm/v3/objects/contacts/101')), `the update reached the fake:\n${log.join('\n')}`);
  assert.ok(!log.some((l) => /tickets/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);

  /* Audited like any other call: one line per request, and the deny with its workspace. */
  const glog = await logSince(mark);
  assert.match(glog, /"GET \/crm\/v3\/objects\/contacts\/101[^"]*" 200 /, glog);
  assert.match(glog, /"PATCH \/crm\/v3\/objects\/contacts\/101[^"]*" 200 /, glog);
  assert.match(glog, /"GET \/crm\/v3\/objects\/tickets\/401[^"]*" 403 /, glog);
  assert.match(glog, /deny workspace=tpws user=agent@tp/, glog);
});

/* jsforce 3.10 with instanceUrl https://acme.my.salesforce.com, no proxy: the namespace sends it to crmgate. */
const JSFORCE_SCRIPT = `${STEP}
const jsforce = require('jsforce');
(async () => {
  const conn = new jsforce.Connection({ instanceUrl: 'https://${SF_HOST}', accessToken: process.env.T_TOKEN, version: '${VERSION}' });
  await step('read', async () => { const r = await conn.sobject('Account').retrieve('${ACC}'); return { Id: r.Id, Name: r.Name, Industry: r.Industry, Phone: r.Phone }; });
  await step('update', async () => conn.sobject('Account').update({ Id: '${ACC}', Name: 'Acme via transparent' }));
  await step('denied', async () => { const r = await conn.sobject('Contact').retrieve('${CON}'); return { Id: r.Id }; });
  process.stdout.write(JSON.stringify(out));
})();`;

test('Transparent: jsforce with instanceUrl https://acme.my.salesforce.com reads (filtered), updates, is denied (403)', { skip: SKIP }, async () => {
  const mark = gate.stderr().length;
  const t = await runNodeJson(JSFORCE_SCRIPT, { NODE_EXTRA_CA_CERTS: CA, T_TOKEN: SF_TOKEN });

  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.deepEqual(t.read.ok, { Id: ACC, Name: 'Acme Rockets', Industry: 'Aerospace' }, 'Phone is filtered out (not readable)');
  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  assert.equal(t.update.ok.success, true, JSON.stringify(t.update.ok));
  const accs = (await fake.state()).salesforce.objects.Account;
  const acc = (Array.isArray(accs) ? accs : Object.values(accs)).find((r) => r.Id === ACC);
  assert.equal(acc.Name, 'Acme via transparent', 'the update reached the fake');

  assert.ok(t.denied.error, `Contact must be denied: ${JSON.stringify(t.denied)}`);
  assert.equal(t.denied.error.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY', JSON.stringify(t.denied.error));
  assert.match(t.denied.error.message, /crmgate/);

  const log = await fakeLog();
  assert.ok(log.some((l) => l.startsWith(`GET /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(log.some((l) => l.startsWith(`PATCH /services/data/v${VERSION}/sobjects/Account/${ACC}`)), log.join('\n'));
  assert.ok(!log.some((l) => /Contact/.test(l)), `the denied call must not reach the fake:\n${log.join('\n')}`);

  const glog = await logSince(mark);
  assert.match(glog, new RegExp(`"GET /services/data/v${VERSION}/sobjects/Contact/${CON}[^"]*" 403 `), `the denied call is answered 403:\n${glog}`);
  assert.match(glog, /deny workspace=tpws user=agent@tp/, glog);
});

test("Transparent: crmgate's log shows the intercepted connection (SNI host and original destination 10.253.0.1:443)", { skip: SKIP || NO_CURL }, async () => {
  const mark = gate.stderr().length;
  const r = await curl(['--cacert', CA, '-H', `Authorization: Bearer ${HS_TOKEN}`, `https://${HS_HOST}${CONTACT_EMAIL}`]);
  assert.equal(r.exit, 0, `curl exit ${r.exit}: ${r.stderr}`);
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(r.json.properties, { email: 'ada@tp.test' }, r.text);
  assert.match(r.headers['x-crmgate-rule'] || '', /^tpws\.json#/, JSON.stringify(r.headers));
  assert.deepEqual(await fakeLog(), [`GET ${CONTACT_EMAIL}`]);
  const log = await logSince(mark);
  const lines = log.split('\n').filter((l) => /intercept|transparent/i.test(l));
  assert.ok(lines.some((l) => l.includes(HS_HOST)), `a log line about the intercepted connection names ${HS_HOST}:\n${log}`);
  assert.ok(lines.some((l) => l.includes(`${CRM_IP}:443`)),
    `a log line about the intercepted connection names the original destination ${CRM_IP}:443 (SO_ORIGINAL_DST):\n${log}`);
});

/* ---------------- not an open proxy ---------------- */

test('Not an open proxy: curl https://example.com/ (non-CRM SNI) fails the handshake; nothing forwarded; refusal logged', { skip: SKIP || NO_CURL }, async () => {
  const mark = gate.stderr().length;
  const r = await curl(['--cacert', CA, 'https://example.com/']);
  assert.notEqual(r.exit, 0, `curl must fail: status ${r.status} ${r.text}`);
  assert.equal(r.status, 0, `no HTTP answer at all: ${r.status} ${r.text}`);
  assert.equal(r.exit, 35, `curl exit 35 (TLS handshake failure), got ${r.exit}: ${r.stderr}`);
  assert.match(r.stderr, /unrecognized name|alert number 112/i, `the handshake is refused with alert unrecognized_name: ${r.stderr}`);
  await assertRefusedAndNothingForwarded('SNI example.com', mark, /example\.com/);
});

test('Not an open proxy: openssl s_client -noservername -connect 10.253.0.1:443 (no SNI) is refused; nothing forwarded', { skip: SKIP || NO_OPENSSL }, async () => {
  const mark = gate.stderr().length;
  const r = await runNs('openssl', ['s_client', '-noservername', '-connect', `${CRM_IP}:443`, '-CAfile', CA], {},
    { input: `GET ${CONTACT_EMAIL} HTTP/1.1\r\nHost: ${HS_HOST}\r\nAuthorization: Bearer ${HS_TOKEN}\r\nConnection: close\r\n\r\n`, timeout: 10000 });
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, `s_client must fail:\n${out}`);
  assert.doesNotMatch(out, /BEGIN CERTIFICATE|Server certificate/, `no certificate may be presented without SNI:\n${out}`);
  assert.match(out, /no peer certificate available/, out);
  assert.doesNotMatch(out, /HTTP\/1\.1 \d/, `no HTTP answer:\n${out}`);
  assert.match(out, /unrecognized name|alert number 112/i, `refused with alert unrecognized_name:\n${out}`);
  await assertRefusedAndNothingForwarded('no SNI', mark, /(no|without) SNI/i);
});

test('Not an open proxy: openssl s_client -servername example.com -connect api.hubapi.com:443 is refused too', { skip: SKIP || NO_OPENSSL }, async () => {
  /* The destination is the CRM address; only the SNI decides. */
  const mark = gate.stderr().length;
  const r = await runNs('openssl', ['s_client', '-servername', 'example.com', '-connect', `${HS_HOST}:443`, '-CAfile', CA], {},
    { input: '', timeout: 10000 });
  const out = r.stdout + r.stderr;
  assert.notEqual(r.code, 0, `s_client must fail:\n${out}`);
  assert.doesNotMatch(out, /BEGIN CERTIFICATE|Server certificate/, `no certificate may be presented for example.com:\n${out}`);
  await assertRefusedAndNothingForwarded('SNI example.com to the CRM address', mark, /example\.com/);
});

test('Not an open proxy: Host/SNI mismatch (SNI api.hubapi.com, Host: evil.example.com) -> 421, nothing forwarded', { skip: SKIP || NO_CURL }, async () => {
  const r = await curl(['--cacert', CA, '-H', 'Host: evil.example.com', '-H', `Authorization: Bearer ${HS_TOKEN}`, `https://${HS_HOST}${CONTACT_EMAIL}`]);
  assert.equal(r.exit, 0, `curl exit ${r.exit}: ${r.stderr}`);
  assert.equal(r.status, 421, `${r.status} ${r.text}`);
  assert.doesNotMatch(r.text, /ada@tp\.test/);
  /* A CRM host, but not this connection's. */
  const h = await curl(['--cacert', CA, '-H', 'Host: api.hubspot.com', '-H', `Authorization: Bearer ${HS_TOKEN}`, `https://${HS_HOST}${CONTACT_EMAIL}`]);
  assert.equal(h.status, 421, `Host api.hubspot.com on an api.hubapi.com connection: ${h.status} ${h.text}`);
  const s = await curl(['--cacert', CA, '-H', 'Host: other.my.salesforce.com', '-H', `Authorization: Bearer ${SF_TOKEN}`,
    `https://${SF_HOST}/services/data/v${VERSION}/sobjects/Account/${ACC}`]);
  assert.equal(s.status, 421, `Host other.my.salesforce.com on an ${SF_HOST} connection: ${s.status} ${s.text}`);
  assert.deepEqual(await fakeLog(), [], 'SNI/Host mismatch: nothing may reach the (fake) CRM');
});

test('Not an open proxy: an SNI that is an address, a look-alike or a deeper name is refused; nothing forwarded', { skip: SKIP || NO_OPENSSL }, async () => {
  const bad = [];
  for (const sni of [CRM_IP, '127.0.0.1', '2130706433', `${HS_HOST}.evil.example`, `x.${HS_HOST}`, `a.b.my.salesforce.com`, 'my.salesforce.com',
    `${'a'.repeat(64)}.my.salesforce.com`, 'localhost']) {
    const mark = gate.stderr().length;
    const r = await runNs('openssl', ['s_client', '-servername', sni, '-connect', `${CRM_IP}:443`, '-CAfile', CA], {}, { input: '', timeout: 10000 });
    const out = r.stdout + r.stderr;
    if (r.code === 0 || /BEGIN CERTIFICATE|Server certificate/.test(out)) bad.push(`SNI ${sni}: a certificate was presented`);
    try { await assertRefusedAndNothingForwarded(`SNI ${sni}`, mark); } catch (e) { bad.push(e.message.split('\n')[0]); }
  }
  assert.deepEqual(bad, []);
});

test('SNI spellings of a CRM host (upper case, trailing dot) are intercepted as that host; Host must still match it', { skip: SKIP || NO_OPENSSL }, async () => {
  for (const sni of ['API.HUBAPI.COM', `${HS_HOST}.`]) {
    const r = await runNs('openssl', ['s_client', '-servername', sni, '-connect', `${CRM_IP}:443`, '-CAfile', CA, '-verify_hostname', HS_HOST, '-ign_eof'], {},
      { input: `GET ${CONTACT_EMAIL} HTTP/1.1\r\nHost: ${HS_HOST}\r\nAuthorization: Bearer ${HS_TOKEN}\r\nConnection: close\r\n\r\n`, timeout: 10000 });
    const out = r.stdout + r.stderr;
    assert.match(out, /Verify return code: 0 \(ok\)/, `SNI ${sni}: the leaf is for ${HS_HOST}:\n${out}`);
    assert.match(out, /^HTTP\/1\.1 200 /m, `SNI ${sni}:\n${out}`);
  }
  assert.deepEqual(await fakeLog(), [`GET ${CONTACT_EMAIL}`, `GET ${CONTACT_EMAIL}`]);
});

test('inside an intercepted connection the reverse listener\'s head checks apply (X-HTTP-Method, Content-Encoding, Upgrade)', { skip: SKIP || NO_CURL }, async () => {
  for (const [args, status] of [
    [['-H', 'X-HTTP-Method: DELETE'], 400],
    [['-X', 'PATCH', '-H', 'Content-Type: application/json', '-H', 'Content-Encoding: gzip', '--data-binary', '{"properties":{"lifecyclestage":"customer"}}'], 415],
    [['-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket'], 501],
  ]) {
    const r = await curl(['--cacert', CA, '-H', `Authorization: Bearer ${HS_TOKEN}`, ...args, `https://${HS_HOST}${args.includes('PATCH') ? '/crm/v3/objects/contacts/101' : CONTACT_EMAIL}`]);
    assert.equal(r.status, status, `${args.join(' ')}: ${r.status} ${r.text} ${r.stderr}`);
  }
  assert.deepEqual(await fakeLog(), [], 'nothing may reach the (fake) CRM');
});

/* No peeking: a ClientHello cut into 7-byte TCP segments is reassembled by the handshake itself. */
test('a ClientHello split over many small TCP segments is intercepted and served', { skip: SKIP }, async () => {
  const script = `
const net = require('net'), tls = require('tls'), fs = require('fs');
const { Duplex } = require('stream');
const sock = net.connect(443, '${CRM_IP}');
sock.setNoDelay(true);
let segments = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const wire = new Duplex({
  async write(chunk, enc, cb) { for (let i = 0; i < chunk.length; i += 7) { sock.write(chunk.subarray(i, i + 7)); segments++; await sleep(2); } cb(); },
  read() {},
});
sock.on('data', (d) => wire.push(d));
sock.on('end', () => wire.push(null));
sock.on('connect', () => {
  const s = tls.connect({ socket: wire, servername: '${HS_HOST}', ca: fs.readFileSync(process.env.T_CA) }, () => {
    s.write('GET ${CONTACT_EMAIL} HTTP/1.1\\r\\nHost: ${HS_HOST}\\r\\nAuthorization: Bearer ${HS_TOKEN}\\r\\nConnection: close\\r\\n\\r\\n');
  });
  let out = '';
  s.on('data', (d) => { out += d; });
  s.on('error', (e) => { out += 'ERROR ' + e.message; });
  let done = false;
  const finish = () => { if (done) return; done = true; process.stdout.write(JSON.stringify({ segments, head: out.split('\\r\\n')[0], email: /ada@tp\\.test/.test(out) })); sock.destroy(); };
  s.on('end', finish);
  s.on('close', finish);
  sock.on('close', () => setTimeout(finish, 100)); /* a TLS socket over a JS stream may not report the end itself */
});`;
  const r = await runNodeJson(script, { T_CA: CA });
  assert.ok(r.segments > 20, `the ClientHello went out in ${r.segments} pieces`);
  assert.match(r.head, /^HTTP\/1\.1 200 /, JSON.stringify(r));
  assert.equal(r.email, true);
});

/* A handshake cannot be held open: silent or trickled, it is closed at limits.header_timeout_ms. */
test('a silent or trickled ClientHello is closed at limits.header_timeout_ms', { skip: SKIP }, async () => {
  const g = await harness.startCrmgate({
    netns: NS, upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS, workers: 1,
    transparent: { listen: `127.0.0.1:${TP2}`, caDir: gate.caDir }, config: { limits: { header_timeout_ms: 600 } },
  });
  try {
    const script = `
const net = require('net');
const hello = Buffer.from('16030100f4010000f00303' + '00'.repeat(200), 'hex');
const one = (trickle) => new Promise((resolve) => {
  const t0 = Date.now();
  const c = net.connect(443, '${CRM_IP2}');
  let i = 0, timer;
  c.on('connect', () => { if (trickle) timer = setInterval(() => { if (i < hello.length) c.write(hello.subarray(i, ++i)); }, 100); });
  c.on('error', () => {});
  c.on('close', () => { clearInterval(timer); resolve(Date.now() - t0); });
  setTimeout(() => { clearInterval(timer); c.destroy(); resolve(-1); }, 5000);
});
Promise.all([one(false), one(true)]).then((ms) => process.stdout.write(JSON.stringify(ms)));`;
    const [silent, trickled] = await runNodeJson(script, {});
    assert.ok(silent > 0 && silent < 4000, `a silent connection is closed by crmgate (after ${silent} ms; -1: still open after 5 s)`);
    assert.ok(trickled > 0 && trickled < 4000, `a trickled ClientHello is closed by crmgate (after ${trickled} ms; -1: still open after 5 s)`);
    assert.deepEqual(await fakeLog(), []);
  } finally {
    await g.stop({ signal: 'SIGKILL' });
  }
});

/* ---------------- config file ---------------- */

test('config file {"transparent": {"listen", "ca_dir"}} starts the transparent listener with that CA (10.253.0.2:443 redirected to it)', { skip: SKIP || NO_CURL }, async () => {
  const g = await harness.startCrmgate({
    netns: NS, upstreams: { hubspot: fake.url, salesforce: fake.url }, rules: RULES, callers: CALLERS,
    transparent: { via: 'config', listen: `127.0.0.1:${TP2}`, caDir: gate.caDir },
  });
  try {
    assert.ok(!g.args.includes('--transparent-listen'), 'the transparent listener comes from the config file only');
    assert.equal(g.transparentPort, TP2);
    const r = await curl(['--cacert', CA, '--resolve', `${HS_HOST}:443:${CRM_IP2}`, '-H', `Authorization: Bearer ${HS_TOKEN}`, `https://${HS_HOST}${CONTACT_EMAIL}`]);
    assert.equal(r.exit, 0, `curl exit ${r.exit}: ${r.stderr}`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.properties, { email: 'ada@tp.test' }, r.text);
    await sleep(100);
    assert.match(g.stderr(), /"GET \/crm\/v3\/objects\/contacts\/101[^"]*" 200 /, 'the config-file crmgate answered it');
  } finally {
    await g.stop({ signal: 'SIGKILL' });
  }
});

/*
 * A REDIRECT rule that also catches crmgate's own calls (the README asks to exempt crmgate's
 * user; this namespace's rule does not): a crmgate whose Salesforce upstream is an intercepted
 * host reaches its own transparent listener. Its CA is in its upstream bundle, so that second
 * hop's TLS succeeds as it would with the CA in the system store. The request carries crmgate's
 * own Via: the second hop answers 508 LOOP_DETECTED at once, instead of a spiral of connections
 * that ends at the upstream timeout.
 */
test('a REDIRECT rule catching crmgate\'s own calls: the looped request gets 508 LOOP_DETECTED at the second hop', { skip: SKIP || NO_CURL }, async () => {
  const g = await harness.startCrmgate({
    netns: NS, upstreams: { hubspot: fake.url, salesforce: `https://${LOOP_HOST}` }, rules: RULES, callers: CALLERS,
    transparent: { listen: `127.0.0.1:${TP2}`, caDir: gate.caDir }, args: ['--ca-bundle', CA],
  });
  try {
    const path = `/services/data/v${VERSION}/sobjects/Account/${ACC}`;
    const r = await curl(['-H', `Authorization: Bearer ${SF_TOKEN}`, `http://127.0.0.1:${g.port}/salesforce${path}?fields=Name`]);
    assert.equal(r.status, 508, r.text);
    assert.equal(r.json[0].errorCode, 'LOOP_DETECTED', r.text);
    assert.match(r.json[0].message, /REDIRECT/, r.text);
    const hops = () => g.stderr().split('\n').filter((l) => l.includes(`"GET `) && l.includes(`/sobjects/Account/${ACC}`));
    for (const t0 = Date.now(); hops().length < 2 && Date.now() - t0 < 3000;) await sleep(20);
    const lines = hops();
    assert.equal(lines.length, 2, `two hops, the second refused:\n${lines.join('\n')}`);
    assert.deepEqual(await fakeLog(), [], 'nothing reached the CRM');
  } finally {
    await g.stop({ signal: 'SIGKILL' });
  }
});

/* ---------------- shutdown and cleanup ---------------- */

/* ---------------- credential custody: a crmgate key where the token goes ---------------- */

test('Transparent: @hubspot/api-client with a crmgate key (default base URL) gets the workspace integration\'s token injected; a revoked key gets 403', { skip: SKIP }, async () => {
  const cli = (args, input) => {
    const r = require('node:child_process').spawnSync(harness.crmgateBinary(), [...args, '--state-dir', gate.stateDir], { input: input || '', encoding: 'utf8' });
    harness.noteCliSecrets(args, input, r);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  cli(['integration', 'add', '--workspace', 'tpws', '--crm', 'hubspot', '--type', 'private-app'], 'pat-na1-tp-integration-token');
  const made = cli(['key', 'create', '--workspace', 'tpws', '--kind', 'workflow']);
  const key = made.stdout.trim();
  const id = /key ([0-9a-f]{16})/.exec(made.stderr)[1];
  const t = await runNodeJson(HUBSPOT_SCRIPT, { NODE_EXTRA_CA_CERTS: CA, T_TOKEN: key });
  assert.ok(t.read.ok, `read: ${JSON.stringify(t.read)}`);
  assert.deepEqual(t.read.ok.properties, { email: 'ada@tp.test', firstname: 'Ada' });
  assert.ok(t.update.ok, `update: ${JSON.stringify(t.update)}`);
  assert.ok(t.denied.error && t.denied.error.code === 403, JSON.stringify(t.denied));
  const reqs = await fake.requests();
  assert.ok(reqs.length >= 2, JSON.stringify(reqs.map((r) => r.path)));
  for (const r of reqs) assert.equal(r.headers.authorization, 'Bearer pat-na1-tp-integration-token', `${r.method} ${r.path}`);
  cli(['key', 'revoke', id]);
  await fake.clearRequests();
  const t2 = await runNodeJson(HUBSPOT_SCRIPT, { NODE_EXTRA_CA_CERTS: CA, T_TOKEN: key });
  assert.ok(t2.read.error && t2.read.error.code === 403, JSON.stringify(t2.read));
  assert.match(JSON.stringify(t2.read.error.body), /revoked/);
  assert.deepEqual(await fakeLog(), [], 'nothing reached the CRM with a revoked key');
});

test('crmgate with a transparent listener exits 0 on SIGTERM', { skip: SKIP }, async () => {
  gate.stopped = true;
  const code = await gate.stop(); /* the harness throws unless the exit code is 0 */
  assert.equal(code, 0);
});

test('cleanup: the network namespace and /etc/netns/NAME are gone (ip netns list)', { skip: SKIP }, async () => {
  await fake.stop();
  removeNetns();
  const list = sh('ip', ['netns', 'list']);
  assert.ok(!list.split('\n').some((l) => l.split(/\s/)[0] === NS), `namespace ${NS} still listed:\n${list}`);
  assert.ok(!fs.existsSync(NS_ETC), `${NS_ETC} still exists`);
});
