'use strict';
/*
 * The admin API (issue 4) through the real binary: the unix socket (mode 0660, replaced when
 * stale, refused when live, removed on exit), the TCP listener and its bearer token, every
 * endpoint (/healthz, /metrics, /v1/workspaces, /v1/audit, /v1/stats), the dry-run switch
 * (durable across a restart, steering real SDK writes), audit filters and cursor paging, and bad
 * input: each a clear 4xx in the {"error": {"code", "message"}} shape that changes nothing.
 * The audited writes are made with the official SDKs against the fake CRM.
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const HS_A = 'pat-na1-adm00000-0000-0000-0000-00000000000a';
const HS_B = 'pat-na1-adm00000-0000-0000-0000-00000000000b';
const SF_A = '00DAdm000000001!AQadmintoken';
const TOKEN = 'admin-token-0123456789-abcdefghij';
const OPP = (() => { const id15 = '006AdmOpp000001'; return id15 + idChecksum(id15); })();
const BATCH = 25;

const OBJECTS = {
  hubspot: {
    objects: {
      deals: { read: ['dealname', 'amount', 'dealstage', 'hs_object_id'], write: { amount: {}, dealstage: {} } },
      contacts: { read: ['email', 'firstname', 'phone', 'hs_object_id'], write: { firstname: {} } },
    },
  },
  salesforce: {
    objects: { Opportunity: { read: ['Id', 'Name', 'StageName', 'Amount', 'CloseDate'], write: { StageName: {}, Amount: {} } } },
  },
};
const RULES = {
  'alpha.json': { workspace: 'alpha', mode: 'enforce', ...OBJECTS },
  'beta.json': { workspace: 'beta', mode: 'dry_run', ...OBJECTS },
};
const CALLERS = [
  { token: HS_A, workspace: 'alpha', user: 'ana' },
  { token: SF_A, workspace: 'alpha', user: 'ana' },
  { token: HS_B, workspace: 'beta', user: 'bo' },
];
const DEALS = Array.from({ length: BATCH + 2 }, (_, i) => ({ id: String(100 + i), properties: { dealname: `Deal ${i}`, amount: String(1000 + i), dealstage: 'appointmentscheduled' } }));
const SEED = {
  hubspot: { objects: { deals: DEALS, contacts: [{ id: '501', properties: { email: 'ana@example.com', firstname: 'Ana', phone: '1' } }] } },
  salesforce: { objects: { Opportunity: [{ Id: OPP, Name: 'Globex', StageName: 'Prospecting', Amount: 50000, CloseDate: '2027-01-31' }] } },
};

let fake;
let gate;
let stateDir;

/* @hubspot/api-client 13 sends defaultHeaders only with per-call options carrying middleware. */
const HS_OPTS = { middleware: [], middlewareMergeStrategy: 'append' };
function hs(token, ctx = {}) {
  return new Client({ accessToken: token, basePath: `${gate.url}/hubspot`, defaultHeaders: ctx, numberOfApiCallRetries: 0 });
}
function sf(token) {
  return new jsforce.Connection({ instanceUrl: `${gate.url}/salesforce`, accessToken: token, version: '62.0' });
}

function startGate(extra = {}) {
  return harness.startCrmgate({
    stateDir, rules: RULES, callers: CALLERS, upstreams: { hubspot: fake.url, salesforce: fake.url }, ...extra,
  });
}

/* A request with a raw body (bad JSON, oversize) over a unix socket or to a URL. */
function raw({ socketPath, url = 'http://localhost', method = 'GET', p, body, headers = {} }) {
  const u = new URL(p, url);
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, host: socketPath ? undefined : u.hostname, port: socketPath ? undefined : u.port, path: u.pathname + u.search, method, headers: { ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function assertError(r, status, code, what) {
  assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body, 'object', `${what}: JSON body`);
  assert.equal(r.body.error.code, code, `${what}: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 5);
}

async function wsState(name) {
  const r = await gate.admin('GET', `/v1/workspaces/${name}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/* Every record of a query, following the cursor. */
async function allPages(query, limit) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ ...query, limit: String(limit), ...(cursor ? { cursor } : {}) });
    const r = await gate.admin('GET', `/v1/audit?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(r.body.records.length <= limit);
    out.push(...r.body.records);
    if (!r.body.next) return out;
    cursor = r.body.next;
  }
  throw new Error('paging never ended');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  if (GATE) return;
  fake = await harness.startFake();
  await fake.seed(SEED);
  stateDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'crmgate-admin-'));
  gate = await startGate();
});

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

test('the admin socket: under the state dir, mode 0660, a socket; /healthz; JSON 404 and 405', { skip: GATE }, async () => {
  assert.equal(gate.adminSocket, path.join(stateDir, 'admin.sock'));
  const st = fs.statSync(gate.adminSocket);
  assert.ok(st.isSocket());
  assert.equal(st.mode & 0o777, 0o660);
  const h = await gate.admin('GET', '/healthz');
  assert.equal(h.status, 200);
  assert.equal(h.body.status, 'ok');
  assert.equal(h.body.store.writes_refused, false);
  assert.match(h.headers['content-type'], /application\/json/);
  assertError(await gate.admin('GET', '/nope'), 404, 'not_found', 'unknown path');
  for (const p of ['/healthz/x', '/metrics/x', '/v1/stats/x', '/v1/audit/1/x', '/v1/healthz', '/v1']) {
    assertError(await gate.admin('GET', p), 404, 'not_found', p);
  }
  assertError(await gate.admin('DELETE', '/v1/workspaces/alpha'), 405, 'method_not_allowed', 'DELETE');
  assertError(await gate.admin('POST', '/healthz'), 405, 'method_not_allowed', 'POST /healthz');
  const q = await raw({ socketPath: gate.adminSocket, p: '/v1/audit?limit=1&limit=2' });
  assert.equal(q.status, 400);
  assert.equal(q.json.error.code, 'bad_query');
  assert.match(q.json.error.message, /limit.*twice/);
});

test('workspaces: modes from the rules; PUT dry_run is validated, durable, steers SDK writes and can be reset', { skip: GATE }, async () => {
  const list = await gate.admin('GET', '/v1/workspaces');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.workspaces.map((w) => w.workspace).sort(), ['alpha', 'beta']);
  let a = await wsState('alpha');
  assert.deepEqual({ mode: a.mode, dry_run: a.dry_run, sw: a.dry_run_switch, src: a.dry_run_source, file: a.rules_file },
    { mode: 'enforce', dry_run: false, sw: null, src: 'rules', file: 'alpha.json' });
  const b = await wsState('beta');
  assert.equal(b.mode, 'dry_run');
  assert.equal(b.dry_run, true);

  /* bad input: each a 4xx, and nothing changes */
  const sock = gate.adminSocket;
  const bad = [
    [await gate.admin('GET', '/v1/workspaces/nosuch'), 404, 'unknown_workspace'],
    [await gate.admin('PUT', '/v1/workspaces/nosuch', { dry_run: true }), 404, 'unknown_workspace'],
    [await gate.admin('PUT', '/v1/workspaces/default', { dry_run: true }), 404, 'unknown_workspace'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', { dry_run: 'yes' }), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', { dry_run: 1 }), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', {}), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', [true]), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', { mode: 'dry_run' }), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha', { dry_run: true, extra: 1 }), 400, 'bad_request'],
    [await gate.admin('PUT', '/v1/workspaces/alpha'), 400, 'bad_json'],
  ];
  for (const [r, status, code] of bad) assertError(r, status, code, JSON.stringify(r.body));
  for (const body of ['{"dry_run": tru', '{"dry_run": true, "dry_run": false}', 'true false']) {
    const r = await raw({ socketPath: sock, method: 'PUT', p: '/v1/workspaces/alpha', body });
    assert.equal(r.status, 400, body);
    assert.equal(r.json.error.code, 'bad_json', body);
  }
  const big = await raw({ socketPath: sock, method: 'PUT', p: '/v1/workspaces/alpha', body: `{"dry_run": true, "pad": "${'x'.repeat(70000)}"}` });
  assert.equal(big.status, 413);
  a = await wsState('alpha');
  assert.equal(a.dry_run, false, 'nothing changed');
  assert.equal(a.dry_run_switch, null);

  /* the switch on: an SDK write in alpha is answered in dry-run and never reaches the CRM */
  const on = await gate.admin('PUT', '/v1/workspaces/alpha', { dry_run: true });
  assert.equal(on.status, 200);
  assert.deepEqual({ d: on.body.dry_run, sw: on.body.dry_run_switch, src: on.body.dry_run_source }, { d: true, sw: true, src: 'switch' });
  await fake.clearRequests();
  const d = await hs(HS_A).crm.deals.basicApi.update(DEALS[BATCH + 1].id, { properties: { amount: '777' } }, undefined, HS_OPTS);
  assert.equal(d.properties.amount, '777');
  assert.equal((await fake.requests()).filter((q) => q.method !== 'GET' && !/batch\/read/.test(q.path)).length, 0, 'no write reached the CRM');
  const st = await fake.state();
  assert.equal(st.hubspot.objects.deals.find((x) => x.id === DEALS[BATCH + 1].id).properties.amount, String(1000 + BATCH + 1));

  /* the switch survives a restart */
  await gate.stop();
  assert.equal(fs.existsSync(path.join(stateDir, 'admin.sock')), false, 'socket removed on exit');
  gate = await startGate();
  a = await wsState('alpha');
  assert.deepEqual({ d: a.dry_run, sw: a.dry_run_switch }, { d: true, sw: true });
  await fake.clearRequests();
  await hs(HS_A).crm.deals.basicApi.update(DEALS[BATCH + 1].id, { properties: { amount: '778' } }, undefined, HS_OPTS);
  assert.equal((await fake.requests()).filter((q) => q.method === 'PATCH').length, 0, 'still dry-run after the restart');

  /* off overrides the rules' dry_run mode; null hands the decision back to the rules */
  const off = await gate.admin('PUT', '/v1/workspaces/beta', { dry_run: false });
  assert.deepEqual({ d: off.body.dry_run, m: off.body.mode }, { d: false, m: 'dry_run' });
  assert.equal((await gate.admin('PUT', '/v1/workspaces/beta', { dry_run: null })).body.dry_run, true);
  const reset = await gate.admin('PUT', '/v1/workspaces/alpha', { dry_run: null });
  assert.deepEqual({ d: reset.body.dry_run, sw: reset.body.dry_run_switch, src: reset.body.dry_run_source }, { d: false, sw: null, src: 'rules' });
  await fake.clearRequests();
  await hs(HS_A).crm.deals.basicApi.update(DEALS[BATCH + 1].id, { properties: { amount: '779' } }, undefined, HS_OPTS);
  assert.equal((await fake.requests()).filter((q) => q.method === 'PATCH').length, 1, 'enforce again: the write reached the CRM');
});

test('a live socket refuses a second crmgate; a stale one (SIGKILL) is replaced', { skip: GATE }, async () => {
  await assert.rejects(startGate(), /admin socket .* is in use by a running crmgate/);
  assert.equal((await gate.admin('GET', '/healthz')).status, 200, 'the first still answers');
  await gate.stop({ signal: 'SIGKILL' });
  assert.ok(fs.statSync(path.join(stateDir, 'admin.sock')).isSocket(), 'the stale socket is left behind');
  gate = await startGate();
  assert.equal((await gate.admin('GET', '/healthz')).status, 200);
  assert.equal(fs.statSync(gate.adminSocket).mode & 0o777, 0o660);
});

test('audit: filters pick the right records, paging is newest first and stable, bad filters are 400s', { skip: GATE }, async () => {
  const t0 = Date.now();
  await sleep(5);
  /* 1: a single update with workflow and call */
  await hs(HS_A, { 'X-Crmgate-Workflow': 'wf-one', 'X-Crmgate-Call': 'call-1' }).crm.deals.basicApi.update('100', { properties: { amount: '5000' } }, undefined, HS_OPTS);
  /* 2: a denied write */
  await assert.rejects(hs(HS_A, { 'X-Crmgate-Workflow': 'wf-one' }).crm.contacts.basicApi.update('501', { properties: { phone: '2' } }, undefined, HS_OPTS));
  /* 3: Salesforce */
  await sf(SF_A).sobject('Opportunity').update({ Id: OPP, StageName: 'Negotiation/Review' }, { headers: { 'X-Crmgate-Workflow': 'wf-two' } });
  await sleep(5);
  const tBatch = Date.now();
  await sleep(5);
  /* 4: a batch of BATCH deals: one record each */
  const inputs = DEALS.slice(0, BATCH).map((d, i) => ({ id: d.id, properties: { dealstage: i % 2 ? 'closedwon' : 'closedlost' } }));
  await hs(HS_A, { 'X-Crmgate-Workflow': 'wf-batch' }).crm.deals.batchApi.update({ inputs }, HS_OPTS);
  /* 5: beta is in dry-run by its rules */
  await hs(HS_B, { 'X-Crmgate-Workflow': 'wf-one' }).crm.deals.basicApi.update('101', { properties: { amount: '1' } }, undefined, HS_OPTS);

  const since = { since: String(t0) };
  const everything = await allPages(since, 1000);
  assert.equal(everything.length, 1 + 1 + 1 + BATCH + 1);
  const ids = everything.map((r) => BigInt(r.id));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] > ids[i], 'newest first');

  const count = async (q) => (await allPages({ ...since, ...q }, 1000)).length;
  assert.equal(await count({ workspace: 'alpha' }), 3 + BATCH);
  assert.equal(await count({ workspace: 'beta' }), 1);
  assert.equal(await count({ crm: 'salesforce' }), 1);
  assert.equal(await count({ crm: 'hubspot', object: 'DEALS' }), 2 + BATCH, 'object is case-insensitive');
  assert.equal(await count({ object: 'contacts', outcome: 'denied' }), 1);
  assert.equal(await count({ outcome: 'dry_run' }), 1);
  assert.equal(await count({ workspace: 'alpha', workflow: 'wf-one' }), 2);
  assert.equal(await count({ workflow: 'wf-one' }), 3, 'workflow without workspace: both workspaces');
  assert.equal(await count({ workspace: 'alpha', call: 'call-1' }), 1);
  assert.equal(await count({ call: 'call-1' }), 1);
  assert.equal(await count({ crm: 'hubspot', object: 'deals', record: '100' }), 2, 'the single update and the batch');
  assert.equal(await count({ record: '100' }), 2, 'record without crm and object');
  assert.equal(await count({ crm: 'salesforce', object: 'Opportunity', record: OPP }), 1);
  assert.equal(await count({ workspace: 'alpha', workflow: 'wf-batch', outcome: 'allowed' }), BATCH);
  assert.equal(await count({ until: String(tBatch) }), 3, 'until: the three writes before the batch');
  assert.equal(await count({ since: String(tBatch) }), BATCH + 1);
  assert.equal(await count({ since: new Date(tBatch).toISOString() }), BATCH + 1, 'ISO 8601 time');
  assert.equal(await count({ workspace: 'nosuch' }), 0);

  /* the single update's record, whole */
  const one = (await allPages({ ...since, workspace: 'alpha', call: 'call-1' }, 10))[0];
  assert.deepEqual({ wf: one.workflow, user: one.user, outcome: one.outcome, fields: one.fields },
    { wf: 'wf-one', user: 'ana', outcome: 'allowed', fields: [{ name: 'amount', before: '1000', after: '5000' }] });
  const byId = await gate.admin('GET', `/v1/audit/${one.id}`);
  assert.equal(byId.status, 200);
  assert.deepEqual(byId.body, one);

  /* paging: pages of 7 with a write between pages; the cursor neither repeats nor skips */
  const q = { ...since, workspace: 'alpha', workflow: 'wf-batch' };
  const first = await gate.admin('GET', `/v1/audit?${new URLSearchParams({ ...q, limit: '7' })}`);
  assert.equal(first.body.records.length, 7);
  assert.ok(first.body.next);
  await hs(HS_A, { 'X-Crmgate-Workflow': 'wf-batch' }).crm.deals.basicApi.update(DEALS[BATCH].id, { properties: { amount: '42' } }, undefined, HS_OPTS);
  const got = [...first.body.records];
  let cursor = first.body.next;
  let pages = 1;
  while (cursor) {
    const r = await gate.admin('GET', `/v1/audit?${new URLSearchParams({ ...q, limit: '7', cursor })}`);
    assert.equal(r.status, 200);
    got.push(...r.body.records);
    cursor = r.body.next;
    pages++;
  }
  assert.equal(pages, Math.ceil(BATCH / 7));
  assert.equal(got.length, BATCH, 'the write made after the first page is not in later pages');
  assert.equal(new Set(got.map((r) => r.id)).size, BATCH);
  assert.deepEqual(got.map((r) => r.record).sort(), DEALS.slice(0, BATCH).map((d) => d.id).sort());
  /* the same cursor again: the same page */
  const again1 = await gate.admin('GET', `/v1/audit?${new URLSearchParams({ ...q, limit: '7', cursor: first.body.next })}`);
  const again2 = await gate.admin('GET', `/v1/audit?${new URLSearchParams({ ...q, limit: '7', cursor: first.body.next })}`);
  assert.deepEqual(again1.body, again2.body);
  assert.deepEqual(again1.body.records, got.slice(7, 14));

  /* bad filters: 400 naming the parameter */
  const badFilters = [
    ['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=ten', 'limit'], ['limit=-1', 'limit'],
    ['crm=zoho', 'crm'], ['outcome=maybe', 'outcome'], ['since=yesterday', 'since'], ['until=2026-13-01', 'until'],
    ['since=2026-12-07T12:00:00Z&until=2026-12-06', 'since'], ['cursor=abc', 'cursor'], ['cursor=0', 'cursor'],
    ['frobnicate=1', 'frobnicate'], ['workspace=', 'workspace'], [`object=${'x'.repeat(300)}`, 'object'],
  ];
  for (const [qs, param] of badFilters) {
    const r = await gate.admin('GET', `/v1/audit?${qs}`);
    assert.equal(r.status, 400, qs);
    assert.equal(r.body.error.code, 'bad_filter', qs);
    assert.equal(r.body.error.parameter, param, qs);
    assert.ok(r.body.error.message.includes(param), `${qs}: ${r.body.error.message}`);
  }
  assertError(await gate.admin('GET', '/v1/audit/abc'), 400, 'bad_id', 'non-numeric id');
  assertError(await gate.admin('GET', '/v1/audit/12x'), 400, 'bad_id', 'non-numeric id');
  assertError(await gate.admin('GET', '/v1/audit/99999999999999999999'), 400, 'bad_id', 'id out of range');
  assertError(await gate.admin('GET', '/v1/audit/12345'), 404, 'not_found', 'unknown id');
});

test('bytes that are not UTF-8 in a path or a query: a 400 in the error shape, never an empty body', { skip: GATE }, async () => {
  for (const p of ['/v1/workspaces/%FF', '/v1/audit/%C3', '/nope%FF', '/v1/audit?workspace=%FF', '/v1/audit?crm=%FF', '/v1/audit?%FF=1', '/v1/stats?workspace=a%FFb']) {
    const r = await raw({ socketPath: gate.adminSocket, p });
    assert.equal(r.status, 400, `${p}: ${r.text}`);
    assert.ok(r.json && r.json.error, `${p}: an error body, got ${JSON.stringify(r.text)}`);
    assert.match(r.json.error.code, /^bad_(path|query)$/, p);
    assert.match(r.json.error.message, /encod/, p);
  }
});

test('slow clients: a request trickled in byte by byte is cut at the deadline; connections past the cap are closed at once', { skip: GATE, timeout: 60000 }, async () => {
  const net = require('node:net');
  const open = () => {
    const s = net.connect(gate.adminSocket);
    s.closedAt = null;
    s.on('close', () => { s.closedAt = Date.now(); });
    s.on('error', () => {});
    return s;
  };
  const t0 = Date.now();
  /* a header line every 2 s: each byte would restart a plain idle timeout */
  const slow = open();
  slow.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const trickle = setInterval(() => { if (slow.closedAt === null) slow.write('X-Slow: 1\r\n'); }, 2000);
  /* 69 more connections that send nothing: 64 is the cap of one listener */
  const idle = Array.from({ length: 69 }, open);
  try {
    for (const deadline = Date.now() + 5000; Date.now() < deadline;) {
      if (idle.filter((c) => c.closedAt !== null).length >= 6) break;
      await sleep(100);
    }
    assert.ok(idle.filter((c) => c.closedAt !== null).length >= 6, 'the connections past the cap were closed at once');
    for (const deadline = Date.now() + 25000; Date.now() < deadline;) {
      if (slow.closedAt !== null && idle.every((c) => c.closedAt !== null)) break;
      await sleep(200);
    }
    assert.ok(slow.closedAt !== null, 'the trickling client was cut');
    assert.ok(slow.closedAt - t0 < 16000, `cut after ${slow.closedAt - t0} ms`);
    assert.ok(idle.every((c) => c.closedAt !== null), 'idle connections closed at the deadline');
    const r = await gate.admin('GET', '/healthz');
    assert.equal(r.status, 200, 'the admin API serves again');
  } finally {
    clearInterval(trickle);
    slow.destroy();
    for (const c of idle) c.destroy();
  }
});

test('stats: counts per workspace, workflow, user, object, field and outcome', { skip: GATE }, async () => {
  const all = await gate.admin('GET', '/v1/stats');
  assert.equal(all.status, 200);
  const a = await gate.admin('GET', '/v1/stats?workspace=alpha');
  assert.equal(a.status, 200);
  assert.equal(a.body.workspace, 'alpha');
  assert.ok(a.body.by_workflow['wf-batch'] >= BATCH);
  assert.ok(a.body.by_field['hubspot/deals.dealstage'] >= BATCH);
  assert.ok(a.body.by_outcome.denied >= 1);
  assert.ok(a.body.by_user.ana >= BATCH);
  assert.equal(a.body.by_workspace.beta, undefined);
  assert.equal(a.body.total, a.body.rows.reduce((n, r) => n + r.count, 0));
  assert.ok(a.body.rows.some((r) => r.workflow === 'wf-two' && r.crm === 'salesforce' && r.object === 'Opportunity' && r.field === 'StageName' && r.outcome === 'allowed'));
  assert.ok(all.body.by_workspace.beta >= 1);
  assert.equal(all.body.total, Object.values(all.body.by_workspace).reduce((n, v) => n + v, 0));
  const none = await gate.admin('GET', '/v1/stats?workspace=nosuch');
  assert.equal(none.body.total, 0);
  const bad = await gate.admin('GET', '/v1/stats?workspac=alpha');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.parameter, 'workspac');
});

/* One sample's value from the exposition text, or undefined. */
function sample(text, name, labels = {}) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = line.match(/^([a-z_:]+)(?:\{(.*)\})? (\S+)$/);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] || '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

test('/metrics: Prometheus text; requests, upstream latency, own calls, audit commits and LMDB size move with SDK calls', { skip: GATE }, async () => {
  const get = async () => {
    const r = await gate.admin('GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
    for (const line of r.body.split('\n')) {
      if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      assert.match(line, /^[a-z_:]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+Inf]+$/, line);
    }
    return r.body;
  };
  const m0 = await get();
  const v0 = (n, l) => sample(m0, n, l) || 0;
  const c = hs(HS_A);
  await c.crm.deals.basicApi.update('102', { properties: { amount: '9' } }, undefined, HS_OPTS);
  await c.crm.deals.basicApi.getById('102', ['amount']);
  await assert.rejects(c.crm.contacts.basicApi.update('501', { properties: { phone: '3' } }, undefined, HS_OPTS));
  await hs(HS_B).crm.deals.basicApi.update('102', { properties: { amount: '10' } }, undefined, HS_OPTS);
  await sf(SF_A).sobject('Opportunity').update({ Id: OPP, Amount: 60000 });
  const m1 = await get();
  const delta = (n, l) => (sample(m1, n, l) || 0) - v0(n, l);
  assert.equal(delta('crmgate_requests_total', { crm: 'hubspot', verb: 'update', decision: 'allow' }), 1);
  assert.equal(delta('crmgate_requests_total', { crm: 'hubspot', verb: 'read', decision: 'allow' }), 1);
  assert.equal(delta('crmgate_requests_total', { crm: 'hubspot', verb: 'update', decision: 'deny' }), 1);
  assert.equal(delta('crmgate_requests_total', { crm: 'hubspot', verb: 'update', decision: 'dry_run' }), 1);
  assert.equal(delta('crmgate_requests_total', { crm: 'salesforce', verb: 'update', decision: 'allow' }), 1);
  assert.equal(delta('crmgate_upstream_latency_seconds_count', { crm: 'hubspot' }), 2, 'the update and the read were forwarded');
  assert.equal(delta('crmgate_upstream_latency_seconds_bucket', { crm: 'hubspot', le: '+Inf' }), 2);
  assert.equal(delta('crmgate_upstream_latency_seconds_count', { crm: 'salesforce' }), 1);
  assert.equal(delta('crmgate_own_upstream_calls_total', { crm: 'hubspot', purpose: 'before_state' }), 2, 'the allowed and the dry-run update read their before-state');
  assert.equal(delta('crmgate_own_upstream_calls_total', { crm: 'salesforce', purpose: 'before_state' }), 1);
  assert.ok(delta('crmgate_audit_commits_total') >= 3, 'each write committed at least once (syncs)');
  assert.equal(delta('crmgate_audit_records_total'), 4, 'allowed + denied + dry-run + Salesforce');
  assert.ok(delta('crmgate_audit_commit_latency_seconds_count') >= 4);
  assert.ok(sample(m1, 'crmgate_lmdb_map_bytes') >= 64 * 1024 * 1024);
  assert.ok(sample(m1, 'crmgate_lmdb_used_bytes') > 0);
  assert.equal(sample(m1, 'crmgate_audit_store_full'), 0);
  assert.equal(sample(m1, 'crmgate_leaf_cache_hits_total'), undefined, 'no forward CA configured: no leaf cache metrics');
  const h = await gate.admin('GET', '/healthz');
  assert.equal(BigInt(h.body.store.last_id) > 0n, true);
});

test('TCP admin listener: bearer token required (401 JSON without it), the token never logged', { skip: GATE }, async () => {
  const tcpDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'crmgate-admin-tcp-'));
  let g2;
  try {
    g2 = await harness.startCrmgate({
      stateDir: tcpDir, rules: RULES, callers: CALLERS, upstreams: { hubspot: fake.url, salesforce: fake.url },
      config: { admin: { listen: '127.0.0.1:0', token: TOKEN } },
    });
    assert.ok(g2.adminUrl, 'admin listener logged');
    const none = await raw({ url: g2.adminUrl, p: '/v1/workspaces' });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'unauthorized');
    assert.match(none.headers['www-authenticate'], /^Bearer/);
    for (const h of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, TOKEN, 'Bearer ']) {
      const r = await raw({ url: g2.adminUrl, p: '/healthz', headers: { authorization: h } });
      assert.equal(r.status, 401, h);
    }
    const put = await raw({ url: g2.adminUrl, method: 'PUT', p: '/v1/workspaces/alpha', body: '{"dry_run":true}', headers: { authorization: 'Bearer nope' } });
    assert.equal(put.status, 401);
    assert.equal((await g2.admin('GET', '/v1/workspaces/alpha')).body.dry_run, false, 'a refused PUT changed nothing');
    const ok = await raw({ url: g2.adminUrl, p: '/v1/workspaces/alpha', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.workspace, 'alpha');
    const ok2 = await raw({ url: g2.adminUrl, method: 'PUT', p: '/v1/workspaces/alpha', body: '{"dry_run":true}', headers: { authorization: `bearer  ${TOKEN}` } });
    assert.equal(ok2.status, 200);
    assert.equal(ok2.json.dry_run, true);
    /* the unix socket needs no token */
    assert.equal((await g2.admin('GET', '/healthz')).status, 200);
    await g2.stop();
    assert.ok(!g2.stderr().includes(TOKEN), 'token not in the log');
    g2 = null;
  } finally {
    if (g2) await g2.stop();
    fs.rmSync(tcpDir, { recursive: true, force: true });
  }
  /* a TCP listener without a token is refused at start */
  await assert.rejects(harness.startCrmgate({ rules: RULES, callers: CALLERS, config: { admin: { listen: '127.0.0.1:0' } } }), /admin\.listen .* needs admin\.token/);
});

test('SIGHUP: the admin API sees the reloaded rules', { skip: GATE }, async () => {
  const file = path.join(stateDir, 'rules', 'gamma.json');
  assertError(await gate.admin('GET', '/v1/workspaces/gamma'), 404, 'unknown_workspace', 'before');
  fs.writeFileSync(file, JSON.stringify({ workspace: 'gamma', mode: 'dry_run', ...OBJECTS }));
  try {
    gate.proc.kill('SIGHUP');
    const deadline = Date.now() + 15000;
    let r;
    do {
      await sleep(50);
      r = await gate.admin('GET', '/v1/workspaces/gamma');
    } while (r.status !== 200 && Date.now() < deadline);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual({ mode: r.body.mode, d: r.body.dry_run }, { mode: 'dry_run', d: true });
    assert.equal((await gate.admin('PUT', '/v1/workspaces/gamma', { dry_run: false })).body.dry_run, false);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

const NO_CURL = (() => { try { require('node:child_process').execFileSync('curl', ['--version'], { stdio: 'ignore' }); return false; } catch { return 'curl not installed'; } })();

test('/metrics: the forward CA\'s leaf cache (a miss, then hits) when a forward listener runs', { skip: GATE || NO_CURL }, async () => {
  const { execFileSync } = require('node:child_process');
  const g3 = await harness.startCrmgate({ rules: RULES, callers: CALLERS, upstreams: { hubspot: fake.url, salesforce: fake.url }, forward: true });
  try {
    const before = (await g3.admin('GET', '/metrics')).body;
    assert.equal(sample(before, 'crmgate_leaf_cache_misses_total'), 0);
    assert.equal(sample(before, 'crmgate_leaf_cache_hits_total'), 0);
    for (let i = 0; i < 2; i++) {
      const out = execFileSync('curl', ['-sS', '--max-time', '10', '-x', g3.forwardUrl, '--cacert', g3.caCert,
        '-H', `Authorization: Bearer ${HS_A}`, 'https://api.hubapi.com/crm/v3/objects/deals/100?properties=amount']).toString();
      assert.equal(JSON.parse(out).id, '100');
    }
    const m = (await g3.admin('GET', '/metrics')).body;
    assert.equal(sample(m, 'crmgate_leaf_cache_misses_total'), 1, 'one leaf minted');
    assert.ok(sample(m, 'crmgate_leaf_cache_hits_total') >= 1, 'the second tunnel reused it');
    assert.equal(sample(m, 'crmgate_leaf_cache_entries'), 1);
    assert.equal(sample(m, 'crmgate_requests_total', { crm: 'hubspot', verb: 'read', decision: 'allow' }), 2);
  } finally {
    await g3.stop();
  }
});
