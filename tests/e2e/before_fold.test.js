'use strict';
/*
 * Folding of concurrent before-state reads across requests (config before_read_window_ms), end
 * to end through the real binary against the fake CRMs, with the official SDKs issuing the
 * concurrent writes (Promise.all). crmgate runs one worker (a window only folds the reads of one
 * worker) and a window long enough that writes sent together always meet in it on a loaded
 * machine; what reached the fake is read from its request log, what crmgate recorded from LMDB
 * (mdb_dump), and the counters from /metrics.
 *
 * Covered: HubSpot updates of different contacts (enforce and dry-run: one batch/read, each
 * write's before-state only its own fields, in the audit record, the SDK answer and the dry-run
 * overlay), the same record twice (asked once), a record the CRM does not have (the CRM's own
 * 404), a property that does not exist (HubSpot ignores it in reads: still one read), a 400 or
 * 404 to the folded read (every write read again on its own), updates by idProperty, a batch
 * write beside single ones (keeps its own read), 101 writes (a batch/read asking for property
 * histories holds 50), a batch update of 60 records, a merged-away id (read alone), different
 * credentials and a delete next to updates (never folded together), custody keys sharing an
 * integration's token (folded), Salesforce updates (one collections retrieve; upserts by
 * external id, deletes and another API version read on their own; a field that does not exist:
 * 400, then each on its own), a folded read refused as too large (413, 414, 431: each on its
 * own), both CRMs in one window, refusals and failures of the folded read
 * (429, 5xx, reset, timeout, an answer that is not a list: every write refused as a failing
 * single read is today, nothing forwarded), the default window 0 (sequential writes read exactly
 * as before; concurrent ones: every read accounted for), the counters, clients that reset their
 * connection while their read waits in the window or is in flight, and SIGTERM during a window.
 *
 * CRMGATE_FOLD_WINDOW_MS overrides the window (500 ms; 1000 under valgrind's CRMGATE_SLOW);
 * CRMGATE_FOLD_DEBUG=1 prints what the SIGTERM test saw.
 *
 *   CRMGATE_BIN=$PWD/crmgate node --test tests/e2e/before_fold.test.js
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { Client } = require('@hubspot/api-client');
const jsforce = require('jsforce');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
/* The window: writes sent together by Promise.all reach crmgate within a few ms; this leaves a
 * loaded machine (or valgrind) plenty of room. */
const WINDOW_MS = Number(process.env.CRMGATE_FOLD_WINDOW_MS || (process.env.CRMGATE_SLOW ? 1000 : 500));
const VERSION = '62.0';
const SF = `/services/data/v${VERSION}`;

const HS_TOKEN = harness.OPEN_TOKENS[1];
const SF_TOKEN = harness.OPEN_TOKENS[3];
const HS_OTHER = 'pat-na1-0f0f0f0f-0000-0000-0000-00000000f01d';
const HS_DRY = 'pat-na1-dddddddd-0000-0000-0000-0000000fd1d1';
const SF_DRY = '00DHs0000000001!AQfolddryruntoken';

const RULES = {
  'e2e-open.json': { workspace: 'e2e-open', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'other.json': { workspace: 'other', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
  'dry.json': { workspace: 'dry', mode: 'dry_run', hubspot: harness.OPEN_CRM, salesforce: harness.OPEN_CRM },
};
const CALLERS = [
  { token: HS_TOKEN, workspace: 'e2e-open', user: 'ana' },
  { token: SF_TOKEN, workspace: 'e2e-open', user: 'ana' },
  { token: HS_OTHER, workspace: 'other', user: 'bo' },
  { token: HS_DRY, workspace: 'dry', user: 'eng' },
  { token: SF_DRY, workspace: 'dry', user: 'eng' },
];

/* ---------------- seed ---------------- */

/* HubSpot batch/read takes 100 inputs, 50 when it asks for property histories (before.h
 * BEFORE_HS_HISTORY), as an update's read does: two batches' worth and one more */
const CAP_WRITES = 101;
const HISTORY_CAP = 50;
/* a batch update of more records than one such batch/read takes */
const BATCH_WRITES = 60;

/* HubSpot contacts: each test has its own range of ids. */
const contact = (id, props) => ({ id: String(id), properties: { email: `c${id}@fold.test`, ...props } });
const HS_CONTACTS = [
  /* 1: enforce, five different records and fields */
  contact(6001, { firstname: 'Ana', lastname: 'Lima' }),
  contact(6002, { firstname: 'Bo', lastname: 'Berg' }),
  contact(6003, { firstname: 'Cy', phone: '555-0103' }),
  contact(6004, { firstname: 'Dee', jobtitle: 'Buyer', city: 'Lyon' }),
  contact(6005, { firstname: 'Eve', company: 'Initech' }),
  /* 2: dry-run */
  contact(6101, { firstname: 'Fay', lastname: 'Ford' }),
  contact(6102, { firstname: 'Gus', lastname: 'Gray' }),
  contact(6103, { firstname: 'Hal', phone: '555-0203' }),
  contact(6104, { firstname: 'Ida', jobtitle: 'Chef', city: 'Oslo' }),
  contact(6105, { firstname: 'Jo', company: 'Globex' }),
  /* 3: the same record twice */
  contact(6201, { firstname: 'Kim', lastname: 'Kahn' }),
  contact(6202, { firstname: 'Lou', lastname: 'Lund' }),
  /* 4: a record that does not exist among existing ones */
  contact(6301, { firstname: 'Max' }), contact(6302, { firstname: 'Ned' }), contact(6303, { firstname: 'Oz' }),
  contact(6311, { firstname: 'Pia' }), contact(6312, { firstname: 'Quinn' }),
  /* 5: a property that does not exist; the folded read refused 400 / 404 */
  contact(6401, { firstname: 'Rae' }), contact(6402, { firstname: 'Sal' }), contact(6403, { firstname: 'Tam' }),
  contact(6411, { firstname: 'Uma', lastname: 'Urs' }), contact(6412, { firstname: 'Vic', lastname: 'Vos' }), contact(6413, { firstname: 'Wes', lastname: 'Wu' }),
  /* 6: different credentials */
  contact(6501, { firstname: 'Xia' }), contact(6502, { firstname: 'Yan' }), contact(6503, { firstname: 'Zed' }),
  /* 7: deletes next to updates */
  contact(6601, { firstname: 'Abe', lastname: 'Aho' }), contact(6602, { firstname: 'Bea', lastname: 'Bay' }),
  contact(6603, { firstname: 'Cal' }), contact(6604, { firstname: 'Dot' }),
  /* 9: faults on the folded read */
  contact(6701, { firstname: 'Eli' }), contact(6702, { firstname: 'Flo' }), contact(6703, { firstname: 'Gil' }),
  /* 10: window 0 */
  contact(6801, { firstname: 'Hob' }), contact(6802, { firstname: 'Ivy' }), contact(6803, { firstname: 'Jay' }),
  contact(6811, { firstname: 'Kai' }), contact(6812, { firstname: 'Lex' }), contact(6813, { firstname: 'Mo' }), contact(6814, { firstname: 'Nia' }),
  /* 11: clients that reset their connection */
  contact(6901, { firstname: 'Oda' }), contact(6902, { firstname: 'Pat' }), contact(6903, { firstname: 'Rex' }),
  contact(6911, { firstname: 'Sam' }), contact(6912, { firstname: 'Tia' }), contact(6913, { firstname: 'Ula' }),
  /* idProperty */
  contact(7001, { firstname: 'Val' }), contact(7002, { firstname: 'Wyn' }), contact(7003, { firstname: 'Xan' }),
  /* a batch write next to single writes */
  contact(7101, { firstname: 'Yul' }), contact(7102, { firstname: 'Zia' }), contact(7103, { firstname: 'Ari' }), contact(7104, { firstname: 'Bex' }),
  /* both CRMs in one window */
  contact(7801, { firstname: 'Ike' }), contact(7802, { firstname: 'Jem', lastname: 'Jost' }),
  /* a timeout on the folded read; SIGTERM while reads wait */
  contact(7601, { firstname: 'Dov' }), contact(7602, { firstname: 'Ema' }),
  contact(7701, { firstname: 'Fen' }), contact(7702, { firstname: 'Gro' }), contact(7703, { firstname: 'Hap' }),
  /* a merged-away id; a folded read refused as too large */
  contact(8101, { firstname: 'Quy', lastname: 'Quist' }), contact(8102, { firstname: 'Roy', lastname: 'Ruud' }), contact(8103, { firstname: 'Siv' }),
  contact(8201, { firstname: 'Tor' }), contact(8202, { firstname: 'Ulf' }),
  /* more writes than one batch/read takes */
  ...Array.from({ length: CAP_WRITES }, (_, i) => contact(7201 + i, { firstname: `Cap${i}` })),
  ...Array.from({ length: BATCH_WRITES }, (_, i) => contact(7401 + i, { firstname: `Bat${i}` })),
];

const sfid = (prefix, n) => harness.sfId(prefix, 'Fold', n);
const SFC = Array.from({ length: 26 }, (_, i) => sfid('003', i + 1));
const SF_SEED = {
  customFields: { Contact: [{ name: 'Ext__c', type: 'string', externalId: true }] },
  objects: {
    Contact: [
      /* 8: enforce */
      { Id: SFC[0], LastName: 'Adler', FirstName: 'Ada', Title: 'CFO' },
      { Id: SFC[1], LastName: 'Brandt', FirstName: 'Ben', Department: 'Sales' },
      { Id: SFC[2], LastName: 'Costa', FirstName: 'Cleo', Phone: '555-0301' },
      { Id: SFC[3], LastName: 'Dahl', FirstName: 'Dan', Ext__c: 'FOLD-EXT-1', Title: 'CEO' },
      /* 8: dry-run */
      { Id: SFC[4], LastName: 'Eng', FirstName: 'Edda', Title: 'CTO' },
      { Id: SFC[5], LastName: 'Fox', FirstName: 'Finn', Department: 'Legal' },
      { Id: SFC[6], LastName: 'Gale', FirstName: 'Gwen', Phone: '555-0307' },
      /* 8: deletes, another version */
      { Id: SFC[7], LastName: 'Hart' }, { Id: SFC[8], LastName: 'Ives' },
      { Id: SFC[9], LastName: 'Jung', FirstName: 'Jan' }, { Id: SFC[10], LastName: 'Kerr', FirstName: 'Kit' },
      /* 5: a field that does not exist */
      { Id: SFC[11], LastName: 'Lowe', FirstName: 'Lia' }, { Id: SFC[12], LastName: 'Mayr', FirstName: 'Mia' },
      { Id: SFC[13], LastName: 'Nash', FirstName: 'Noa' },
      /* 9: faults */
      { Id: SFC[14], LastName: 'Orr' }, { Id: SFC[15], LastName: 'Penn' },
      /* both CRMs in one window */
      { Id: SFC[19], LastName: 'Uhl', FirstName: 'Udo', Title: 'COO' },
      /* dry-run If-Unmodified-Since */
      { Id: SFC[20], LastName: 'Vogt', FirstName: 'Vera' }, { Id: SFC[21], LastName: 'Wolf', FirstName: 'Wim' },
      { Id: SFC[22], LastName: 'Xu', FirstName: 'Xin' },
      /* the same record, one write naming a field that does not exist */
      { Id: SFC[18], LastName: 'Stein', FirstName: 'Sia', Title: 'VP' },
      /* a folded read refused as too large */
      { Id: SFC[23], LastName: 'Yates' }, { Id: SFC[24], LastName: 'Zorn' },
      /* a malformed id next to good ones */
      { Id: SFC[16], LastName: 'Quast', FirstName: 'Quin' }, { Id: SFC[17], LastName: 'Roth', FirstName: 'Rolf' },
    ],
  },
};

/* ---------------- the stack ---------------- */

let fake;
let gate;
let newRecords = () => [];
/* the folds the tests above expect crmgate to have counted, per CRM */
const FOLDED = { hubspot: 0, salesforce: 0 };

before(async () => {
  if (GATE) return;
  fake = await harness.startFake();
  await fake.reset();
  await fake.seed({ hubspot: { objects: { contacts: HS_CONTACTS } }, salesforce: SF_SEED });
  gate = await startGate({ before_read_window_ms: WINDOW_MS });
  newRecords = harness.auditCursor(gate.stateDir);
});

/* A crmgate with one worker (a window folds one worker's reads) in front of the fake. */
function startGate(config) {
  return harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url }, workers: 1, rules: RULES, callers: CALLERS, config });
}

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
});

const hs = (token = HS_TOKEN, g = gate) => new Client({ accessToken: token, basePath: `${g.url}/hubspot` });
const sf = (token = SF_TOKEN, version = VERSION, g = gate) => new jsforce.Connection({ instanceUrl: `${g.url}/salesforce`, accessToken: token, version });
/* straight to the fake, past crmgate: the CRM's state changing under a dry-run workspace */
const hsDirect = () => new Client({ accessToken: HS_TOKEN, basePath: fake.url });
const sfDirect = () => new jsforce.Connection({ instanceUrl: fake.url, accessToken: SF_TOKEN, version: VERSION });

async function hsState(id) {
  return (await fake.state()).hubspot.objects.contacts.find((x) => x.id === String(id));
}
async function sfState(id) {
  return (await fake.state()).salesforce.objects.Contact.find((x) => x.Id === id);
}

/* ---------------- the fake's request log ---------------- */

const HS_ROW = /^\/crm\/v3\/objects\/([^/]+)\/([^/]+)$/;
const SF_ROW = /^\/services\/data\/v([\d.]+)\/sobjects\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/;
const SF_RETRIEVE = /^\/services\/data\/v([\d.]+)\/composite\/sobjects\/([^/]+)$/;
const dec = (s) => decodeURIComponent(s);

/*
 * What crmgate sent the fake, sorted out: HubSpot single-record GETs (crmgate's before-reads:
 * agents' reads are never mixed into a measured step), batch/reads with their bodies, PATCHes and
 * DELETEs; Salesforce row GETs, collections retrieves, and writes.
 */
function sortOut(reqs) {
  const out = { hsGets: [], hsBatchReads: [], hsPatches: [], hsDeletes: [], sfGets: [], sfRetrieves: [], sfWrites: [], other: [] };
  for (const r of reqs) {
    const q = new URLSearchParams(r.query);
    const auth = r.headers.authorization;
    const status = r.response ? r.response.status : null;
    let m;
    if (r.method === 'GET' && (m = HS_ROW.exec(r.path)) && m[2] !== 'batch') {
      out.hsGets.push({ type: m[1], id: dec(m[2]), q, raw: r.query, auth, status, properties: (q.get('properties') || '').split(',').filter(Boolean) });
    } else if (r.method === 'POST' && /^\/crm\/v3\/objects\/[^/]+\/batch\/read$/.test(r.path)) {
      const b = JSON.parse(r.body);
      out.hsBatchReads.push({ type: r.path.split('/')[4], ids: b.inputs.map((i) => i.id), body: b, q, auth, status });
    } else if (r.method === 'PATCH' && (m = HS_ROW.exec(r.path))) {
      out.hsPatches.push({ type: m[1], id: dec(m[2]), body: JSON.parse(r.body), auth, status });
    } else if (r.method === 'DELETE' && (m = HS_ROW.exec(r.path))) {
      out.hsDeletes.push({ type: m[1], id: dec(m[2]), auth, status });
    } else if (r.method === 'GET' && (m = SF_ROW.exec(r.path))) {
      out.sfGets.push({ ver: m[1], object: m[2], id: dec(m[4] !== undefined ? m[4] : m[3]), extField: m[4] !== undefined ? m[3] : null, fields: (q.get('fields') || '').split(',').filter(Boolean), auth, status });
    } else if (r.method === 'GET' && (m = SF_RETRIEVE.exec(r.path))) {
      out.sfRetrieves.push({ ver: m[1], object: m[2], ids: (q.get('ids') || '').split(','), fields: (q.get('fields') || '').split(','), auth, status });
    } else if (r.path.startsWith('/services/') && r.method !== 'GET') {
      out.sfWrites.push({ method: r.method, path: r.path, body: r.body, auth, status });
    } else {
      out.other.push(`${r.method} ${r.path}`);
    }
  }
  return out;
}

/* The fake's log since the last clear, sorted out. */
async function sent() {
  return sortOut(await fake.requests());
}

/* The number of before-reads in a sorted-out log. */
function readCount(s) {
  return s.hsGets.length + s.hsBatchReads.length + s.sfGets.length + s.sfRetrieves.length;
}

const sorted = (a) => [...a].sort();

/* ---------------- metrics ---------------- */

/* One sample's value from Prometheus text (the first whose labels include those given). */
function sample(text, name, labels = {}) {
  const re = new RegExp(`^${name}(\\{([^}]*)\\})? (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const got = Object.fromEntries([...(m[2] || '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function metrics(g = gate) {
  const r = await g.admin('GET', '/metrics');
  assert.equal(r.status, 200);
  return r.body;
}

/* The counters this suite watches: folds saved and crmgate's own before-state calls, per CRM. */
async function counters(g = gate) {
  const m = await metrics(g);
  const out = {};
  for (const crm of ['hubspot', 'salesforce']) {
    out[crm] = {
      folded: sample(m, 'crmgate_before_reads_folded_total', { crm }) || 0,
      calls: sample(m, 'crmgate_own_upstream_calls_total', { crm, purpose: 'before_state' }) || 0,
    };
  }
  return out;
}

/*
 * Runs fn with the fake's log cleared and the audit cursor moved past older records; returns
 * {value (fn's), s (the log sorted out), recs (the new audit records), folded and calls (the
 * counters' deltas per CRM)}. The own-call counter must always match the reads the fake saw.
 */
async function step(fn, g = gate, { resends = false } = {}) {
  await fake.clearRequests();
  newRecords();
  const c0 = await counters(g);
  const value = await fn();
  const s = await sent();
  const recs = g === gate ? newRecords() : [];
  const c1 = await counters(g);
  const folded = { hubspot: c1.hubspot.folded - c0.hubspot.folded, salesforce: c1.salesforce.folded - c0.salesforce.folded };
  const calls = { hubspot: c1.hubspot.calls - c0.hubspot.calls, salesforce: c1.salesforce.calls - c0.salesforce.calls };
  /* resends: curl resends a read whose reused connection was reset (one call, several requests) */
  const same = resends ? (a, b, m) => assert.ok(a >= 1 && a <= b, m) : assert.equal;
  same(calls.hubspot, s.hsGets.length + s.hsBatchReads.length, `own HubSpot before-state calls counted: ${JSON.stringify(calls)} vs ${JSON.stringify(s)}`);
  if (!resends || calls.salesforce) same(calls.salesforce, s.sfGets.length + s.sfRetrieves.length, `own Salesforce before-state calls counted: ${JSON.stringify(calls)}`);
  return { value, s, recs, folded, calls };
}

/* Settles every promise; returns [{ok, value} | {ok: false, error}] in order. */
async function settle(promises) {
  return (await Promise.allSettled(promises)).map((r) => (r.status === 'fulfilled' ? { ok: true, value: r.value } : { ok: false, error: r.reason }));
}

/* Audit records keyed by record id (each list in commit order). */
function byRecord(recs) {
  const m = {};
  for (const r of recs) (m[r.record] = m[r.record] || []).push(r);
  return m;
}

/* Exactly one record for each of want's ids, with the given fields ({name: [before, after]}). */
function expectRecords(recs, want, extra = {}) {
  const got = byRecord(recs);
  assert.deepEqual(sorted(Object.keys(got)), sorted(Object.keys(want)), `records: ${JSON.stringify(recs, null, 1)}`);
  for (const [id, fields] of Object.entries(want)) {
    assert.equal(got[id].length, 1, `one record for ${id}: ${JSON.stringify(got[id])}`);
    const r = got[id][0];
    assert.deepEqual(harness.fieldMap(r), fields, `record ${id}: ${JSON.stringify(r)}`);
    for (const [k, v] of Object.entries(extra)) assert.deepEqual(r[k], v, `record ${id} ${k}: ${JSON.stringify(r)}`);
  }
}

/* The properties a HubSpot single or batch read asked for. */
const batchProps = (b) => sorted(b.body.properties || []);

/* ---------------- 1. HubSpot enforce ---------------- */

test('HubSpot: five concurrent SDK updates of five contacts are read with one batch/read; each record has its own before and after', { skip: GATE }, async () => {
  const writes = {
    6001: { firstname: 'Anna' },
    6002: { lastname: 'Borg' },
    6003: { phone: '555-9103' },
    6004: { jobtitle: 'Head buyer', city: 'Paris' },
    6005: { company: 'Initrode' },
  };
  const { value, s, recs, folded } = await step(() => Promise.all(Object.entries(writes).map(([id, properties]) => hs().crm.contacts.basicApi.update(id, { properties }))));
  assert.deepEqual(s.hsGets.map((g) => g.id), [], 'no single before-read');
  assert.equal(s.hsBatchReads.length, 1, JSON.stringify(s.hsBatchReads));
  const br = s.hsBatchReads[0];
  assert.equal(br.type, 'contacts');
  assert.deepEqual(sorted(br.ids), sorted(Object.keys(writes)));
  assert.equal(br.q.get('archived'), 'false');
  assert.equal(br.auth, `Bearer ${HS_TOKEN}`);
  assert.equal(br.status, 200);
  const union = sorted(Object.values(writes).flatMap((p) => Object.keys(p)));
  assert.deepEqual(batchProps(br), union, 'the read asks for every property written');
  assert.deepEqual(sorted(br.body.propertiesWithHistory || []), union);
  assert.deepEqual(sorted(s.hsPatches.map((p) => p.id)), sorted(Object.keys(writes)));
  for (const p of s.hsPatches) assert.deepEqual(p.body, { properties: writes[p.id] });
  /* each SDK answer is the CRM's own for its record */
  Object.keys(writes).forEach((id, i) => {
    assert.equal(value[i].id, id);
    for (const [k, v] of Object.entries(writes[id])) assert.equal(value[i].properties[k], v);
  });
  expectRecords(recs, {
    6001: { firstname: ['Ana', 'Anna'] },
    6002: { lastname: ['Berg', 'Borg'] },
    6003: { phone: ['555-0103', '555-9103'] },
    6004: { jobtitle: ['Buyer', 'Head buyer'], city: ['Lyon', 'Paris'] },
    6005: { company: ['Initech', 'Initrode'] },
  }, { outcome: 'allowed', verb: 'update', crm: 'hubspot', workspace: 'e2e-open', synthetic: false });
  /* the admin API shows the same records */
  for (const rec of recs) {
    const a = await gate.admin('GET', `/v1/audit/${rec.id}`);
    assert.equal(a.status, 200);
    assert.deepEqual(a.body.fields, rec.fields);
    assert.equal(a.body.record, rec.record);
  }
  assert.equal(folded.hubspot, 4, 'a folded read of five writes saves four');
  assert.equal(folded.salesforce, 0);
  FOLDED.hubspot += 4;
  assert.equal((await hsState(6004)).properties.city, 'Paris');
});

/* ---------------- 2. HubSpot dry-run ---------------- */

test('HubSpot dry-run: the same five updates, folded; no write reaches the CRM, each answer holds only its own properties, the overlay only its own fields', { skip: GATE }, async () => {
  const writes = {
    6101: { firstname: 'Faye' },
    6102: { lastname: 'Grey' },
    6103: { phone: '555-9203' },
    6104: { jobtitle: 'Head chef', city: 'Bergen' },
    6105: { company: 'Globex Corp' },
  };
  const was = {};
  for (const id of Object.keys(writes)) was[id] = await hsState(id);
  const { value, s, recs, folded } = await step(() => Promise.all(Object.entries(writes).map(([id, properties]) => hs(HS_DRY).crm.contacts.basicApi.update(id, { properties }))));
  assert.deepEqual(s.hsPatches, [], 'no PATCH reached the CRM');
  assert.deepEqual(s.other, []);
  assert.deepEqual(s.hsGets.map((g) => g.id), []);
  assert.equal(s.hsBatchReads.length, 1);
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), sorted(Object.keys(writes)));
  assert.equal(s.hsBatchReads[0].auth, `Bearer ${HS_DRY}`);
  /* each answer: the properties written plus hs_object_id, createdate and lastmodifieddate, as
   * HubSpot answers a PATCH; never a property only another write of the group wrote */
  Object.keys(writes).forEach((id, i) => {
    const a = value[i];
    assert.equal(a.id, id);
    assert.deepEqual(sorted(Object.keys(a.properties)), sorted([...Object.keys(writes[id]), 'createdate', 'hs_object_id', 'lastmodifieddate']), `answer for ${id}: ${JSON.stringify(a)}`);
    for (const [k, v] of Object.entries(writes[id])) assert.equal(a.properties[k], v);
    assert.equal(a.properties.hs_object_id, id);
    assert.equal(a.properties.createdate, was[id].properties.createdate);
  });
  expectRecords(recs, {
    6101: { firstname: ['Fay', 'Faye'] },
    6102: { lastname: ['Gray', 'Grey'] },
    6103: { phone: ['555-0203', '555-9203'] },
    6104: { jobtitle: ['Chef', 'Head chef'], city: ['Oslo', 'Bergen'] },
    6105: { company: ['Globex', 'Globex Corp'] },
  }, { outcome: 'dry_run', decision: 'dry_run', verb: 'update', workspace: 'dry', synthetic: true });
  assert.equal(folded.hubspot, 4);
  FOLDED.hubspot += 4;
  for (const id of Object.keys(writes)) assert.deepEqual(await hsState(id), was[id], `the fake's ${id} is unchanged`);

  /* later reads in the dry-run workspace show the dry-run values, single and batch */
  const all = ['firstname', 'lastname', 'phone', 'jobtitle', 'city', 'company'];
  for (const id of Object.keys(writes)) {
    const r = await hs(HS_DRY).crm.contacts.basicApi.getById(id, all);
    for (const k of all) assert.equal(r.properties[k], k in writes[id] ? writes[id][k] : (was[id].properties[k] ?? null), `read of ${id}.${k}`);
  }
  const b = await hs(HS_DRY).crm.contacts.batchApi.read({ inputs: Object.keys(writes).map((id) => ({ id })), properties: all, propertiesWithHistory: [] });
  for (const r of b.results) for (const [k, v] of Object.entries(writes[r.id])) assert.equal(r.properties[k], v);

  /* The CRM changes, under the dry-run workspace, a property of 6101 that only the write of
   * 6102 wrote (lastname) and one of 6102 only 6104's wrote (city): the dry-run workspace reads
   * the CRM's new values. An overlay record that kept the other writes' fields from the folded
   * read would show the old ones. */
  await hsDirect().crm.contacts.basicApi.update('6101', { properties: { lastname: 'Changed-in-CRM' } });
  await hsDirect().crm.contacts.basicApi.update('6102', { properties: { city: 'Tromso' } });
  const r1 = await hs(HS_DRY).crm.contacts.basicApi.getById('6101', ['firstname', 'lastname']);
  assert.equal(r1.properties.firstname, 'Faye', 'the dry-run value');
  assert.equal(r1.properties.lastname, 'Changed-in-CRM', 'a field 6101\'s write did not write is the CRM\'s');
  const r2 = await hs(HS_DRY).crm.contacts.basicApi.getById('6102', ['lastname', 'city']);
  assert.equal(r2.properties.lastname, 'Grey');
  assert.equal(r2.properties.city, 'Tromso');
});

/* ---------------- 3. the same record twice ---------------- */

test('HubSpot: the same record written twice concurrently is asked for once; both records have the same before', { skip: GATE }, async () => {
  const { value, s, recs, folded } = await step(() => Promise.all([
    hs().crm.contacts.basicApi.update('6201', { properties: { firstname: 'Uno' } }),
    hs().crm.contacts.basicApi.update('6201', { properties: { firstname: 'Dos' } }),
    hs().crm.contacts.basicApi.update('6202', { properties: { lastname: 'Lind' } }),
  ]));
  assert.deepEqual(s.hsGets.map((g) => g.id), []);
  assert.equal(s.hsBatchReads.length, 1);
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['6201', '6202'], 'each record asked for once');
  assert.equal(s.hsBatchReads[0].status, 200, 'the fake refuses duplicate ids in a batch/read (400): none sent');
  assert.equal(s.hsPatches.length, 3);
  assert.deepEqual(value.map((v) => v.id), ['6201', '6201', '6202']);
  const got = byRecord(recs);
  assert.equal(got['6201'].length, 2);
  assert.deepEqual(sorted(got['6201'].map((r) => JSON.stringify(harness.fieldMap(r)))),
    sorted([{ firstname: ['Kim', 'Uno'] }, { firstname: ['Kim', 'Dos'] }].map((f) => JSON.stringify(f))), 'both writes saw the same before');
  assert.deepEqual(harness.fieldMap(got['6202'][0]), { lastname: ['Lund', 'Lind'] });
  for (const r of recs) assert.equal(r.outcome, 'allowed');
  assert.equal(folded.hubspot, 2, 'three writes, one read');
  FOLDED.hubspot += 2;
});

/* ---------------- 4. a record the CRM does not have ---------------- */

test('HubSpot: a concurrent update of a contact that does not exist gets HubSpot\'s own 404; the others their before-states', { skip: GATE }, async () => {
  const missing = '99990001';
  const { value, s, recs, folded } = await step(() => settle([
    hs().crm.contacts.basicApi.update('6301', { properties: { firstname: 'Maxi' } }),
    hs().crm.contacts.basicApi.update(missing, { properties: { firstname: 'Nobody' } }),
    hs().crm.contacts.basicApi.update('6302', { properties: { firstname: 'Ned2' } }),
    hs().crm.contacts.basicApi.update('6303', { properties: { lastname: 'Oswald' } }),
  ]));
  assert.equal(s.hsBatchReads.length, 1);
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), sorted(['6301', missing, '6302', '6303']));
  assert.equal(s.hsBatchReads[0].status, 207, 'HubSpot answers a batch/read with a missing id 207');
  assert.deepEqual(s.hsGets.map((g) => g.id), [], 'a record missing from the folded read is not read again');
  assert.equal(value[1].ok, false);
  assert.equal(value[1].error.code, 404, String(value[1].error));
  assert.equal(value[1].error.body.category, 'OBJECT_NOT_FOUND', 'HubSpot\'s own answer');
  for (const i of [0, 2, 3]) assert.equal(value[i].ok, true, String(value[i].error));
  assert.deepEqual(sorted(s.hsPatches.map((p) => p.id)), sorted(['6301', missing, '6302', '6303']), 'the CRM answers the missing one itself');
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got['6301'][0]), { firstname: ['Max', 'Maxi'] });
  assert.deepEqual(harness.fieldMap(got['6302'][0]), { firstname: ['Ned', 'Ned2'] });
  assert.deepEqual(harness.fieldMap(got['6303'][0]), { lastname: [null, 'Oswald'] });
  assert.deepEqual(harness.fieldMap(got[missing][0]), { firstname: [null, 'Nobody'] });
  assert.equal(got[missing][0].outcome, 'upstream_error');
  assert.equal(got[missing][0].upstream_status, 404);
  assert.equal(folded.hubspot, 3);
  FOLDED.hubspot += 3;

  /* dry-run: crmgate answers the missing one 404 itself, the others as HubSpot would */
  const d = await step(() => settle([
    hs(HS_DRY).crm.contacts.basicApi.update('6311', { properties: { firstname: 'Pia2' } }),
    hs(HS_DRY).crm.contacts.basicApi.update(missing, { properties: { firstname: 'Nobody' } }),
    hs(HS_DRY).crm.contacts.basicApi.update('6312', { properties: { firstname: 'Quinn2' } }),
  ]));
  assert.equal(d.s.hsBatchReads.length, 1);
  assert.deepEqual(d.s.hsGets, []);
  assert.deepEqual(d.s.hsPatches, []);
  assert.equal(d.value[1].ok, false);
  assert.equal(d.value[1].error.code, 404);
  assert.equal(d.value[0].value.properties.firstname, 'Pia2');
  assert.equal(d.value[2].value.properties.firstname, 'Quinn2');
  const dg = byRecord(d.recs);
  assert.deepEqual(harness.fieldMap(dg['6311'][0]), { firstname: ['Pia', 'Pia2'] });
  assert.deepEqual(harness.fieldMap(dg['6312'][0]), { firstname: ['Quinn', 'Quinn2'] });
  assert.equal(d.folded.hubspot, 2);
  FOLDED.hubspot += 2;
});

/* ---------------- 5. a property that does not exist; 400 / 404 to the folded read ---------------- */

test('HubSpot: a concurrent update naming a property that does not exist: HubSpot ignores it in reads (one read), and refuses the write itself', { skip: GATE }, async () => {
  /* hubspot-api.md §3.1: "Unknown property names are ignored silently, not rejected" in reads,
   * single and batch; the fake does the same, so the folded read is answered 200 */
  const { value, s, recs, folded } = await step(() => settle([
    hs().crm.contacts.basicApi.update('6401', { properties: { firstname: 'Rae2' } }),
    hs().crm.contacts.basicApi.update('6402', { properties: { no_such_property_x: 'x' } }),
    hs().crm.contacts.basicApi.update('6403', { properties: { lastname: 'Tamm' } }),
  ]));
  assert.equal(s.hsBatchReads.length, 1);
  assert.equal(s.hsBatchReads[0].status, 200);
  assert.ok(batchProps(s.hsBatchReads[0]).includes('no_such_property_x'));
  assert.deepEqual(s.hsGets, []);
  assert.equal(value[0].ok, true);
  assert.equal(value[2].ok, true);
  assert.equal(value[1].ok, false);
  assert.equal(value[1].error.code, 400);
  assert.match(JSON.stringify(value[1].error.body), /PROPERTY_DOESNT_EXIST|does not exist/);
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got['6401'][0]), { firstname: ['Rae', 'Rae2'] });
  assert.deepEqual(harness.fieldMap(got['6403'][0]), { lastname: [null, 'Tamm'] });
  assert.equal(got['6402'][0].outcome, 'upstream_error');
  assert.equal(got['6402'][0].upstream_status, 400);
  assert.equal(folded.hubspot, 2);
  FOLDED.hubspot += 2;
});

test('HubSpot: a folded read answered 400 or 404 is read again one write at a time, so each gets its single read\'s outcome', { skip: GATE }, async () => {
  const rounds = [
    [400, { status: 'error', message: 'Invalid input JSON', correlationId: '00000000-0000-0000-0000-000000000400', category: 'VALIDATION_ERROR' }, 'A'],
    [404, { status: 'error', message: 'resource not found', correlationId: '00000000-0000-0000-0000-000000000404', category: 'OBJECT_NOT_FOUND' }, 'B'],
  ];
  for (const [status, body, tag] of rounds) {
    const writes = { 6411: { firstname: `Uma${tag}` }, 6412: { lastname: `Voss${tag}` }, 6413: { firstname: `Wes${tag}`, lastname: `Wulf${tag}` } };
    const was = {};
    for (const id of Object.keys(writes)) was[id] = (await hsState(id)).properties;
    await fake.fault({ match: { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }, action: 'status', status, body, count: 1 });
    let r;
    try {
      r = await step(() => Promise.all(Object.entries(writes).map(([id, properties]) => hs().crm.contacts.basicApi.update(id, { properties }))));
    } finally {
      await fake.clearFaults();
    }
    const { s, recs, folded } = r;
    assert.equal(s.hsBatchReads.length, 1, `${status}: ${JSON.stringify(s.hsBatchReads)}`);
    assert.equal(s.hsBatchReads[0].status, status);
    assert.deepEqual(sorted(s.hsGets.map((g) => g.id)), sorted(Object.keys(writes)), `${status}: each write read again on its own`);
    for (const g of s.hsGets) {
      /* exactly today's single read: the write's own properties only */
      assert.deepEqual(sorted(g.properties), sorted(Object.keys(writes[g.id])), `${status}: ${g.id}'s own properties`);
      assert.equal(g.auth, `Bearer ${HS_TOKEN}`);
      assert.equal(g.status, 200);
    }
    assert.equal(s.hsPatches.length, 3);
    const want = {};
    for (const [id, props] of Object.entries(writes)) want[id] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, [was[id][k] ?? null, v]]));
    expectRecords(recs, want, { outcome: 'allowed' });
    assert.equal(folded.hubspot, 0, `${status}: no read saved`);
  }
});

/* ---------------- idProperty ---------------- */

test('HubSpot: updates by idProperty fold among themselves (idProperty in the batch/read), not with updates by id', { skip: GATE }, async () => {
  const { value, s, recs, folded } = await step(() => Promise.all([
    hs().crm.contacts.basicApi.update('c7001@fold.test', { properties: { firstname: 'Vala' } }, 'email'),
    hs().crm.contacts.basicApi.update('c7002@fold.test', { properties: { lastname: 'Wynne' } }, 'email'),
    hs().crm.contacts.basicApi.update('7003', { properties: { firstname: 'Xana' } }),
  ]));
  assert.deepEqual(value.map((v) => v.id), ['7001', '7002', '7003']);
  assert.equal(s.hsBatchReads.length, 1, JSON.stringify(s.hsBatchReads));
  assert.equal(s.hsBatchReads[0].body.idProperty, 'email');
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['c7001@fold.test', 'c7002@fold.test']);
  assert.deepEqual(s.hsGets.map((g) => [g.id, g.q.get('idProperty')]), [['7003', null]], 'the update by id is read on its own');
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got['c7001@fold.test'][0]).firstname, ['Val', 'Vala']);
  assert.deepEqual(harness.fieldMap(got['c7002@fold.test'][0]).lastname, [null, 'Wynne']);
  assert.deepEqual(harness.fieldMap(got['7003'][0]), { firstname: ['Xan', 'Xana'] });
  assert.equal(folded.hubspot, 1);
  FOLDED.hubspot += 1;
});

/* ---------------- 6. different credentials ---------------- */

test('HubSpot: writes with different credentials are never read together', { skip: GATE }, async () => {
  const { s, recs, folded } = await step(() => Promise.all([
    hs(HS_TOKEN).crm.contacts.basicApi.update('6501', { properties: { firstname: 'Xia2' } }),
    hs(HS_OTHER).crm.contacts.basicApi.update('6502', { properties: { firstname: 'Yan2' } }),
    hs(HS_TOKEN).crm.contacts.basicApi.update('6503', { properties: { firstname: 'Zed2' } }),
  ]));
  assert.equal(s.hsBatchReads.length, 1, JSON.stringify(s.hsBatchReads));
  assert.equal(s.hsBatchReads[0].auth, `Bearer ${HS_TOKEN}`);
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['6501', '6503'], 'only the first token\'s records');
  assert.deepEqual(s.hsGets.map((g) => [g.id, g.auth]), [['6502', `Bearer ${HS_OTHER}`]], 'the other token\'s write read alone, with its own credential');
  for (const p of s.hsPatches) assert.equal(p.auth, `Bearer ${p.id === '6502' ? HS_OTHER : HS_TOKEN}`);
  const got = byRecord(recs);
  assert.equal(got['6502'][0].workspace, 'other');
  assert.deepEqual(harness.fieldMap(got['6502'][0]), { firstname: ['Yan', 'Yan2'] });
  assert.deepEqual(harness.fieldMap(got['6501'][0]), { firstname: ['Xia', 'Xia2'] });
  assert.deepEqual(harness.fieldMap(got['6503'][0]), { firstname: ['Zed', 'Zed2'] });
  assert.equal(folded.hubspot, 1);
  FOLDED.hubspot += 1;
});

/* ---------------- 7. deletes and updates ---------------- */

test('HubSpot: deletes fold only with deletes, never with updates of the same type', { skip: GATE }, async () => {
  const { s, recs, folded } = await step(() => Promise.all([
    hs().crm.contacts.basicApi.archive('6601'),
    hs().crm.contacts.basicApi.update('6603', { properties: { firstname: 'Cal2' } }),
  ]));
  assert.deepEqual(s.hsBatchReads, [], 'a delete and an update: two single reads');
  assert.deepEqual(sorted(s.hsGets.map((g) => g.id)), ['6601', '6603']);
  assert.deepEqual(s.hsGets.find((g) => g.id === '6601').properties, [], 'a delete\'s read asks for no property list, as today');
  assert.deepEqual(harness.fieldMap(byRecord(recs)['6603'][0]), { firstname: ['Cal', 'Cal2'] });
  assert.deepEqual(harness.fieldMap(byRecord(recs)['6601'][0]).email, ['c6601@fold.test', null]);
  assert.equal(folded.hubspot, 0);

  const t = await step(() => Promise.all([
    hs().crm.contacts.basicApi.archive('6602'),
    hs().crm.contacts.basicApi.update('6604', { properties: { firstname: 'Dot2' } }),
    hs().crm.contacts.basicApi.archive('6603'),
    hs().crm.contacts.basicApi.update('6501', { properties: { lastname: 'Xiong' } }),
  ]));
  assert.deepEqual(t.s.hsGets, []);
  assert.equal(t.s.hsBatchReads.length, 2, JSON.stringify(t.s.hsBatchReads));
  const del = t.s.hsBatchReads.find((b) => b.ids.includes('6602'));
  const upd = t.s.hsBatchReads.find((b) => b.ids.includes('6604'));
  assert.deepEqual(sorted(del.ids), ['6602', '6603'], 'the deletes together');
  assert.deepEqual(sorted(upd.ids), ['6501', '6604'], 'the updates together');
  assert.deepEqual(batchProps(del), [], 'the deletes\' read asks for no property list');
  assert.deepEqual(batchProps(upd), ['firstname', 'lastname']);
  const got = byRecord(t.recs);
  assert.deepEqual(harness.fieldMap(got['6602'][0]).firstname, ['Bea', null]);
  assert.deepEqual(harness.fieldMap(got['6602'][0]).lastname, ['Bay', null]);
  assert.deepEqual(harness.fieldMap(got['6603'][0]).firstname, ['Cal2', null]);
  assert.deepEqual(harness.fieldMap(got['6604'][0]), { firstname: ['Dot', 'Dot2'] });
  assert.deepEqual(harness.fieldMap(got['6501'][0]), { lastname: [null, 'Xiong'] });
  assert.equal(t.folded.hubspot, 2);
  FOLDED.hubspot += 2;
  assert.equal((await hsState(6602)).archived, true);
});

/* ---------------- groups: the same missing record, a batch write, the cap ---------------- */

test('HubSpot: two concurrent updates of the same record that does not exist: one single read (404), both get HubSpot\'s 404', { skip: GATE }, async () => {
  const missing = '99990002';
  const { value, s, recs, folded } = await step(() => settle([
    hs().crm.contacts.basicApi.update(missing, { properties: { firstname: 'A' } }),
    hs().crm.contacts.basicApi.update(missing, { properties: { lastname: 'B' } }),
  ]));
  assert.deepEqual(s.hsBatchReads, [], 'one record: its single-record read');
  assert.equal(s.hsGets.length, 1);
  assert.equal(s.hsGets[0].id, missing);
  assert.equal(s.hsGets[0].status, 404);
  assert.deepEqual(sorted(s.hsGets[0].properties), ['firstname', 'lastname'], 'with every field the group writes');
  for (const v of value) {
    assert.equal(v.ok, false);
    assert.equal(v.error.code, 404);
    assert.equal(v.error.body.category, 'OBJECT_NOT_FOUND');
  }
  assert.equal(s.hsPatches.length, 2, 'HubSpot answers each write itself');
  const got = byRecord(recs)[missing];
  assert.deepEqual(sorted(got.map((r) => JSON.stringify(harness.fieldMap(r)))), sorted([JSON.stringify({ firstname: [null, 'A'] }), JSON.stringify({ lastname: [null, 'B'] })]));
  assert.equal(folded.hubspot, 1);
  FOLDED.hubspot += 1;
});

test('HubSpot: a batch update keeps its own batch/read; single updates beside it fold among themselves', { skip: GATE }, async () => {
  const { value, s, recs, folded } = await step(() => Promise.all([
    hs().crm.contacts.batchApi.update({ inputs: [{ id: '7101', properties: { firstname: 'Yule' } }, { id: '7102', properties: { lastname: 'Zorn' } }] }),
    hs().crm.contacts.basicApi.update('7103', { properties: { firstname: 'Aria' } }),
    hs().crm.contacts.basicApi.update('7104', { properties: { lastname: 'Baxter' } }),
  ]));
  assert.equal(value[0].status, 'COMPLETE');
  assert.deepEqual(s.hsGets, []);
  assert.deepEqual(sorted(s.hsBatchReads.map((b) => sorted(b.ids).join())), ['7101,7102', '7103,7104']);
  expectRecords(recs, {
    7101: { firstname: ['Yul', 'Yule'] },
    7102: { lastname: [null, 'Zorn'] },
    7103: { firstname: ['Ari', 'Aria'] },
    7104: { lastname: [null, 'Baxter'] },
  }, { outcome: 'allowed' });
  assert.equal(folded.hubspot, 1, 'only the two single writes were folded');
  FOLDED.hubspot += 1;
});

test(`HubSpot: ${CAP_WRITES} concurrent updates: two batch/reads of ${HISTORY_CAP} (property histories), the one over alone`, { skip: GATE }, async () => {
  const ids = Array.from({ length: CAP_WRITES }, (_, i) => String(7201 + i));
  const { value, s, recs, folded } = await step(() => Promise.all(ids.map((id) => hs().crm.contacts.basicApi.update(id, { properties: { lastname: `L${id}` } }))));
  assert.equal(value.length, CAP_WRITES);
  const sizes = s.hsBatchReads.map((b) => b.ids.length);
  for (const b of s.hsBatchReads) {
    assert.equal(b.status, 200);
    /* every write names lastname: the read asks for it once, as a single read's list does */
    assert.deepEqual(b.body.properties, ['lastname']);
    assert.deepEqual(b.body.propertiesWithHistory, ['lastname']);
  }
  assert.ok(Math.max(...sizes) <= HISTORY_CAP, `batch sizes ${sizes}`);
  assert.deepEqual(sorted([...s.hsBatchReads.flatMap((b) => b.ids), ...s.hsGets.map((g) => g.id)]), sorted(ids), 'each record read once');
  if (!process.env.CRMGATE_SLOW) {
    /* valgrind may take longer than the window to take in 101 requests: the split is then
     * the window's; otherwise it is the cap's */
    assert.deepEqual(sizes, [HISTORY_CAP, HISTORY_CAP], `batch sizes ${sizes}`);
    assert.equal(s.hsGets.length, 1);
  }
  assert.equal(s.hsPatches.length, CAP_WRITES);
  const got = byRecord(recs);
  for (const id of ids) assert.deepEqual(harness.fieldMap(got[id][0]), { lastname: [null, `L${id}`] });
  assert.equal(folded.hubspot, CAP_WRITES - readCount(s));
  FOLDED.hubspot += folded.hubspot;
});

test(`HubSpot: a batch update of ${BATCH_WRITES} contacts reads its before-state in batch/reads of ${HISTORY_CAP} at most (HubSpot refuses more with property histories): every record has its before`, { skip: GATE }, async () => {
  const ids = Array.from({ length: BATCH_WRITES }, (_, i) => String(7401 + i));
  const { value, s, recs } = await step(() => hs().crm.contacts.batchApi.update({ inputs: ids.map((id) => ({ id, properties: { firstname: `B${id}` } })) }));
  assert.equal(value.status, 'COMPLETE');
  assert.deepEqual(s.hsBatchReads.map((b) => b.status), [200, 200], JSON.stringify(s.hsBatchReads.map((b) => [b.ids.length, b.status])));
  assert.deepEqual(sorted(s.hsBatchReads.map((b) => b.ids.length)), [BATCH_WRITES - HISTORY_CAP, HISTORY_CAP].sort());
  assert.deepEqual(sorted(s.hsBatchReads.flatMap((b) => b.ids)), sorted(ids));
  const got = byRecord(recs);
  ids.forEach((id, i) => assert.deepEqual(harness.fieldMap(got[id][0]), { firstname: [`Bat${i}`, `B${id}`] }, `record ${id}`));
});

/* ---------------- 8. Salesforce ---------------- */

test('Salesforce (jsforce): three concurrent Contact updates are read with one collections retrieve; an upsert by external id is read on its own', { skip: GATE }, async () => {
  const writes = [
    { Id: SFC[0], FirstName: 'Adaline' },
    { Id: SFC[1], Department: 'Field sales' },
    { Id: SFC[2], Phone: '555-9301', Title: 'Analyst' },
  ];
  const { value, s, recs, folded } = await step(() => Promise.all([
    ...writes.map((w) => sf().sobject('Contact').update(w)),
    sf().sobject('Contact').upsert({ Ext__c: 'FOLD-EXT-1', Title: 'Chair' }, 'Ext__c'),
  ]));
  for (const v of value) assert.equal(v.success, true, JSON.stringify(v));
  assert.equal(s.sfRetrieves.length, 1, JSON.stringify(s.sfRetrieves));
  const rt = s.sfRetrieves[0];
  assert.equal(rt.ver, VERSION);
  assert.equal(rt.object, 'Contact');
  assert.deepEqual(sorted(rt.ids), sorted(writes.map((w) => w.Id)));
  assert.ok(rt.fields.includes('Id'));
  for (const f of ['FirstName', 'Department', 'Phone', 'Title']) assert.ok(rt.fields.includes(f), `${f} asked for: ${rt.fields}`);
  assert.equal(rt.auth, `Bearer ${SF_TOKEN}`);
  assert.deepEqual(s.sfGets.map((g) => [g.extField, g.id]), [['Ext__c', 'FOLD-EXT-1']], 'only the upsert read on its own');
  assert.equal(s.sfWrites.length, 4);
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got[SFC[0]][0]), { FirstName: ['Ada', 'Adaline'] });
  assert.deepEqual(harness.fieldMap(got[SFC[1]][0]), { Department: ['Sales', 'Field sales'] });
  assert.deepEqual(harness.fieldMap(got[SFC[2]][0]), { Phone: ['555-0301', '555-9301'], Title: [null, 'Analyst'] });
  assert.deepEqual(harness.fieldMap(got['FOLD-EXT-1'][0]), { Title: ['CEO', 'Chair'], Ext__c: ['FOLD-EXT-1', 'FOLD-EXT-1'] });
  for (const r of recs) assert.equal(r.outcome, 'allowed');
  assert.equal(folded.salesforce, 2);
  assert.equal(folded.hubspot, 0);
  FOLDED.salesforce += 2;
  assert.equal((await sfState(SFC[2])).Title, 'Analyst');
});

test('Salesforce dry-run (jsforce): the folded updates are answered by crmgate, audited with their own before, read back; the overlay holds only each write\'s fields', { skip: GATE }, async () => {
  const writes = [
    { Id: SFC[4], FirstName: 'Eddie' },
    { Id: SFC[5], Title: 'Counsel' },
    { Id: SFC[6], Phone: '555-9307' },
  ];
  const was = {};
  for (const w of writes) was[w.Id] = await sfState(w.Id);
  const { value, s, recs, folded } = await step(() => Promise.all(writes.map((w) => sf(SF_DRY).sobject('Contact').update(w))));
  for (const [i, v] of value.entries()) assert.deepEqual(v, { id: writes[i].Id, success: true, errors: [] });
  assert.deepEqual(s.sfWrites, [], 'no write reached the CRM');
  assert.deepEqual(s.sfGets, []);
  assert.equal(s.sfRetrieves.length, 1);
  assert.deepEqual(sorted(s.sfRetrieves[0].ids), sorted(writes.map((w) => w.Id)));
  assert.equal(s.sfRetrieves[0].auth, `Bearer ${SF_DRY}`);
  expectRecords(recs, {
    [SFC[4]]: { FirstName: ['Edda', 'Eddie'] },
    [SFC[5]]: { Title: [null, 'Counsel'] },
    [SFC[6]]: { Phone: ['555-0307', '555-9307'] },
  }, { outcome: 'dry_run', workspace: 'dry', synthetic: true });
  assert.equal(folded.salesforce, 2);
  FOLDED.salesforce += 2;
  for (const w of writes) assert.deepEqual(await sfState(w.Id), was[w.Id]);
  for (const w of writes) {
    const r = await sf(SF_DRY).sobject('Contact').retrieve(w.Id, { fields: ['FirstName', 'Title', 'Phone'] });
    for (const k of ['FirstName', 'Title', 'Phone']) assert.equal(r[k], k in w ? w[k] : (was[w.Id][k] ?? null), `${w.Id}.${k}`);
  }
  /* the CRM changes a field of SFC[4] that only SFC[5]'s write wrote (Title): the dry-run
   * workspace reads the CRM's value, not one kept from the folded read */
  await sfDirect().sobject('Contact').update({ Id: SFC[4], Title: 'Changed in CRM' });
  const r = await sf(SF_DRY).sobject('Contact').retrieve(SFC[4], { fields: ['FirstName', 'Title'] });
  assert.equal(r.FirstName, 'Eddie');
  assert.equal(r.Title, 'Changed in CRM');
});

test('Salesforce: deletes and writes of another API version are read on their own', { skip: GATE }, async () => {
  const { s, recs, folded } = await step(() => Promise.all([
    sf().sobject('Contact').destroy(SFC[7]),
    sf().sobject('Contact').destroy(SFC[8]),
    sf(SF_TOKEN, '59.0').sobject('Contact').update({ Id: SFC[9], FirstName: 'Janne' }),
    sf().sobject('Contact').update({ Id: SFC[10], FirstName: 'Kitty' }),
  ]));
  assert.deepEqual(s.sfRetrieves, [], JSON.stringify(s.sfRetrieves));
  assert.deepEqual(sorted(s.sfGets.map((g) => `${g.ver} ${g.id}`)), sorted([`${VERSION} ${SFC[7]}`, `${VERSION} ${SFC[8]}`, `59.0 ${SFC[9]}`, `${VERSION} ${SFC[10]}`]));
  assert.deepEqual(s.sfGets.find((g) => g.id === SFC[7]).fields, [], 'a delete reads the whole record, as today');
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got[SFC[7]][0]).LastName, ['Hart', null]);
  assert.deepEqual(harness.fieldMap(got[SFC[9]][0]), { FirstName: ['Jan', 'Janne'] });
  assert.deepEqual(harness.fieldMap(got[SFC[10]][0]), { FirstName: ['Kit', 'Kitty'] });
  assert.equal(folded.salesforce, 0);
});

test('Salesforce: a folded retrieve refused 400 (a field that does not exist) is read again one write at a time; only the bad write loses its before-state', { skip: GATE }, async () => {
  const { value, s, recs, folded } = await step(() => settle([
    sf().sobject('Contact').update({ Id: SFC[11], FirstName: 'Liam' }),
    sf().sobject('Contact').update({ Id: SFC[12], Nope__c: 'x' }),
    sf().sobject('Contact').update({ Id: SFC[13], Title: 'Navigator' }),
  ]));
  assert.equal(s.sfRetrieves.length, 1);
  assert.equal(s.sfRetrieves[0].status, 400, 'salesforce-api.md §7.4: an invalid field fails the retrieve');
  assert.deepEqual(sorted(s.sfGets.map((g) => g.id)), sorted([SFC[11], SFC[12], SFC[13]]), 'each write read again on its own');
  for (const g of s.sfGets) assert.equal(g.status, g.id === SFC[12] ? 400 : 200);
  assert.equal(value[0].ok, true);
  assert.equal(value[2].ok, true);
  assert.equal(value[1].ok, false);
  assert.equal(value[1].error.errorCode, 'INVALID_FIELD', 'the CRM\'s own answer to the write');
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got[SFC[11]][0]), { FirstName: ['Lia', 'Liam'] });
  assert.deepEqual(harness.fieldMap(got[SFC[13]][0]), { Title: [null, 'Navigator'] });
  assert.equal(got[SFC[12]][0].before_state, 'unavailable');
  assert.equal(got[SFC[12]][0].upstream_status, 400);
  assert.equal(folded.salesforce, 0);
});

test('a folded read refused as too large (414 URI too long, 431, 413: it asks for every write\'s fields and records) is read again one write at a time', { skip: GATE }, async () => {
  /* salesforce-api.md: a URI over 16,384 bytes is refused 414; the folded retrieve's URL lists
   * every write's ids and fields, where each write's own read lists its own */
  const rounds = [
    ['Salesforce', 414, { method: 'GET', path: '^/services/data/v[0-9.]+/composite/sobjects/Contact$' }],
    ['HubSpot', 413, { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }],
    ['HubSpot', 431, { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }],
  ];
  let n = 0;
  for (const [crm, status, match] of rounds) {
    n++;
    await fake.fault({ match, action: 'status', status, body: { message: 'too large' }, count: 1 });
    let r;
    try {
      r = await step(() => settle(crm === 'Salesforce'
        ? [sf().sobject('Contact').update({ Id: SFC[23], Title: `T${n}` }), sf().sobject('Contact').update({ Id: SFC[24], Department: `D${n}` })]
        : [hs().crm.contacts.basicApi.update('8201', { properties: { firstname: `F${n}` } }), hs().crm.contacts.basicApi.update('8202', { properties: { lastname: `L${n}` } })]));
    } finally {
      await fake.clearFaults();
    }
    const { value, s, recs, folded } = r;
    for (const v of value) assert.equal(v.ok, true, `${status}: ${v.error}`);
    const batches = crm === 'Salesforce' ? s.sfRetrieves : s.hsBatchReads;
    const singles = crm === 'Salesforce' ? s.sfGets : s.hsGets;
    assert.deepEqual(batches.map((b) => b.status), [status], `${status}: the folded read, refused`);
    assert.equal(singles.length, 2, `${status}: each write read again on its own`);
    for (const g of singles) assert.equal(g.status, 200);
    assert.equal(recs.length, 2);
    for (const rec of recs) {
      assert.equal(rec.outcome, 'allowed', `${status}: ${JSON.stringify(rec)}`);
      assert.notEqual(rec.before_state, 'unavailable');
    }
    assert.deepEqual(folded, { hubspot: 0, salesforce: 0 });
  }
});

test('Salesforce: two concurrent updates of one record, one naming a field that does not exist: the one read (400) is redone write by write', { skip: GATE }, async () => {
  const { value, s, recs, folded } = await step(() => settle([
    sf().sobject('Contact').update({ Id: SFC[18], Title: 'SVP' }),
    sf().sobject('Contact').update({ Id: SFC[18], Nope__c: 'x' }),
  ]));
  assert.deepEqual(s.sfRetrieves, [], 'one record: its single-record read');
  assert.equal(s.sfGets.length, 3, JSON.stringify(s.sfGets));
  assert.deepEqual(sorted(s.sfGets[0].fields), ['Id', 'Nope__c', 'Title'], 'the folded read asks for every field');
  assert.equal(s.sfGets[0].status, 400);
  assert.deepEqual(sorted(s.sfGets.slice(1).map((g) => `${g.fields.join()} ${g.status}`)), ['Id,Nope__c 400', 'Id,Title 200'], 'then each write its own read');
  assert.equal(value[0].ok, true, String(value[0].error));
  assert.equal(value[1].ok, false);
  assert.equal(value[1].error.errorCode, 'INVALID_FIELD');
  const got = byRecord(recs)[SFC[18]];
  const good = got.find((r) => r.outcome === 'allowed');
  assert.deepEqual(harness.fieldMap(good), { Title: ['VP', 'SVP'] });
  const bad = got.find((r) => r.outcome !== 'allowed');
  assert.equal(bad.before_state, 'unavailable');
  assert.equal(folded.salesforce, 0);
});

test('Salesforce: a write naming an id of another object is refused by crmgate before any read; the good ones beside it still fold', { skip: GATE }, async () => {
  /*
   * A Salesforce single GET answers such an id 400 MALFORMED_ID, a collections retrieve null
   * (salesforce-api.md §7.4): folded, it would read as a missing record. crmgate's classifier
   * refuses ids whose key prefix is another object's, so none reaches a read.
   */
  const BAD = harness.sfId('001', 'Fold', 99); /* an Account id */
  for (const [token, workspace] of [[SF_TOKEN, 'e2e-open'], [SF_DRY, 'dry']]) {
    const r = await step(() => settle([
      sf(token).sobject('Contact').update({ Id: SFC[16], FirstName: `Quinn-${workspace}` }),
      sf(token).sobject('Contact').update({ Id: BAD, FirstName: 'Folded' }),
      sf(token).sobject('Contact').update({ Id: SFC[17], FirstName: `Rolfe-${workspace}` }),
    ]));
    assert.equal(r.value[0].ok, true, String(r.value[0].error));
    assert.equal(r.value[2].ok, true, String(r.value[2].error));
    assert.equal(r.value[1].ok, false);
    assert.equal(r.value[1].error.errorCode, 'INSUFFICIENT_ACCESS_OR_READONLY');
    assert.match(r.value[1].error.message, /not a Contact id/);
    assert.equal(r.s.sfRetrieves.length, 1);
    assert.deepEqual(sorted(r.s.sfRetrieves[0].ids), sorted([SFC[16], SFC[17]]));
    assert.deepEqual(r.s.sfGets, []);
    const got = byRecord(r.recs);
    assert.deepEqual(r.recs.filter((x) => x.outcome === 'denied').map((x) => x.decision), ['deny'], JSON.stringify(r.recs));
    assert.deepEqual(harness.fieldMap(got[SFC[16]][0]).FirstName[1], `Quinn-${workspace}`);
    assert.deepEqual(harness.fieldMap(got[SFC[17]][0]).FirstName[1], `Rolfe-${workspace}`);
    assert.equal(r.folded.salesforce, 1);
    FOLDED.salesforce += 1;
  }
});

test('dry-run writes of both CRMs in one window fold per CRM (one Salesforce record twice: asked once); each answer carries the folded read\'s quota headers', { skip: GATE }, async () => {
  const dry = { authorization: `Bearer ${HS_DRY}` };
  const sfDry = { authorization: `Bearer ${SF_DRY}` };
  const hsPatch = (id, properties) => harness.requestJson(`${gate.url}/hubspot/crm/v3/objects/contacts/${id}`, { method: 'PATCH', headers: dry, body: { properties } });
  const sfPatch = (id, body) => harness.requestJson(`${gate.url}/salesforce${SF}/sobjects/Contact/${id}`, { method: 'PATCH', headers: sfDry, body });
  const { value, s, recs, folded } = await step(() => Promise.all([
    hsPatch('7801', { firstname: 'Ikea' }),
    sfPatch(SFC[19], { FirstName: 'Udon' }),
    hsPatch('7802', { lastname: 'Jostle' }),
    sfPatch(SFC[19], { Title: 'CEO' }),
    sfPatch(SFC[1], { Phone: '555-0302' }),
  ]));
  assert.equal(s.hsBatchReads.length, 1);
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['7801', '7802']);
  assert.equal(s.sfRetrieves.length, 1);
  assert.deepEqual(sorted(s.sfRetrieves[0].ids), sorted([SFC[19], SFC[1]]), 'the record written twice asked once');
  assert.deepEqual(s.hsGets, []);
  assert.deepEqual(s.sfGets, []);
  assert.deepEqual(s.hsPatches, []);
  assert.deepEqual(s.sfWrites, []);
  for (const i of [0, 2]) {
    assert.equal(value[i].status, 200, JSON.stringify(value[i].body));
    assert.equal(value[i].headers['x-crmgate-decision'], 'dry_run');
    assert.equal(value[i].headers['x-hubspot-ratelimit-interval-milliseconds'], '10000', 'HubSpot\'s quota headers, as the write\'s answer would carry');
    assert.match(value[i].headers['x-hubspot-ratelimit-remaining'], /^\d+$/);
  }
  assert.deepEqual(sorted(Object.keys(value[0].body.properties)), ['createdate', 'firstname', 'hs_object_id', 'lastmodifieddate']);
  assert.deepEqual(sorted(Object.keys(value[2].body.properties)), ['createdate', 'hs_object_id', 'lastmodifieddate', 'lastname']);
  for (const i of [1, 3, 4]) {
    assert.equal(value[i].status, 204, JSON.stringify(value[i].body));
    assert.match(value[i].headers['sforce-limit-info'], /^api-usage=\d+\/\d+$/);
  }
  const got = byRecord(recs);
  assert.deepEqual(sorted(got[SFC[19]].map((r) => JSON.stringify(harness.fieldMap(r)))),
    sorted([JSON.stringify({ FirstName: ['Udo', 'Udon'] }), JSON.stringify({ Title: ['COO', 'CEO'] })]));
  assert.deepEqual(harness.fieldMap(got[SFC[1]][0]), { Phone: [null, '555-0302'] });
  assert.deepEqual(harness.fieldMap(got['7801'][0]), { firstname: ['Ike', 'Ikea'] });
  assert.deepEqual(harness.fieldMap(got['7802'][0]), { lastname: ['Jost', 'Jostle'] });
  assert.deepEqual(folded, { hubspot: 1, salesforce: 2 });
  FOLDED.hubspot += 1;
  FOLDED.salesforce += 2;
  /* both dry-run writes of the one record are read back */
  const r = await sf(SF_DRY).sobject('Contact').retrieve(SFC[19], { fields: ['FirstName', 'Title'] });
  assert.deepEqual([r.FirstName, r.Title], ['Udon', 'CEO']);
});

test('Salesforce dry-run with If-Unmodified-Since: such writes fold among themselves (LastModifiedDate asked, kept by each), apart from writes without it; each gets its own 412 or 204', { skip: GATE }, async () => {
  const past = 'Fri, 03 Jan 2025 00:00:00 GMT'; /* before the records were seeded: changed since */
  const future = new Date(Date.now() + 86400000).toUTCString();
  const { value, s, recs, folded } = await step(() => settle([
    sf(SF_DRY).sobject('Contact').update({ Id: SFC[20], FirstName: 'Verena' }, { headers: { 'If-Unmodified-Since': past } }),
    sf(SF_DRY).sobject('Contact').update({ Id: SFC[21], Title: 'Ranger' }, { headers: { 'If-Unmodified-Since': future } }),
    sf(SF_DRY).sobject('Contact').update({ Id: SFC[22], FirstName: 'Xinyi' }),
  ]));
  assert.deepEqual(s.sfWrites, []);
  assert.equal(s.sfRetrieves.length, 1, JSON.stringify(s.sfRetrieves));
  assert.deepEqual(sorted(s.sfRetrieves[0].ids), sorted([SFC[20], SFC[21]]));
  assert.ok(s.sfRetrieves[0].fields.includes('LastModifiedDate'), `${s.sfRetrieves[0].fields}`);
  assert.deepEqual(s.sfGets.map((g) => [g.id, g.fields]), [[SFC[22], ['Id', 'FirstName']]], 'a write without the condition reads alone, without LastModifiedDate');
  assert.equal(value[0].ok, false);
  assert.equal(value[0].error.errorCode, 'ENTITY_FAILED_IFLASTMODIFIED_ON_UPDATE_CHECK', String(value[0].error));
  assert.equal(value[1].ok, true, String(value[1].error));
  assert.equal(value[2].ok, true, String(value[2].error));
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got[SFC[21]][0]), { Title: [null, 'Ranger'] });
  assert.equal(got[SFC[21]][0].outcome, 'dry_run');
  assert.deepEqual(harness.fieldMap(got[SFC[22]][0]), { FirstName: ['Xin', 'Xinyi'] });
  assert.equal(got[SFC[20]][0].error, 'precondition_failed', JSON.stringify(got[SFC[20]][0]));
  assert.deepEqual(harness.fieldMap(got[SFC[20]][0]), { FirstName: ['Vera', 'Verena'] });
  assert.equal(folded.salesforce, 1);
  FOLDED.salesforce += 1;
  const r = await sf(SF_DRY).sobject('Contact').retrieve(SFC[20], { fields: ['FirstName'] });
  assert.equal(r.FirstName, 'Vera', 'the refused write left no dry-run value');
});

/* ---------------- 9. faults on the folded read ---------------- */

test('a folded read refused 429 or failing (500, reset, an answer that is not a list): every write of the group is refused as a failing single read is today; nothing forwarded', { skip: GATE }, async () => {
  const ids = ['6701', '6702', '6703'];
  /* every batch/read fails while the fault is armed: curl resends a read whose reused connection
   * was reset, and that resend must fail too (as in upstream_faults.test.js) */
  const run = async (fault) => {
    await fake.fault({ match: { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }, count: -1, ...fault });
    try {
      return await step(() => settle(ids.map((id, i) => hs().crm.contacts.basicApi.update(id, { properties: { firstname: `F${i}` } }))), gate, { resends: fault.action === 'reset' });
    } finally {
      await fake.clearFaults();
    }
  };
  /* a rate limit: each agent gets HubSpot's own 429, its Retry-After and rate-limit headers */
  let r = await run({ action: 'ratelimit', headers: { 'Retry-After': '7' } });
  assert.equal(r.s.hsBatchReads.length, 1);
  assert.deepEqual(r.s.hsGets, [], 'a 429 is not retried one by one');
  assert.deepEqual(r.s.hsPatches, [], 'nothing forwarded');
  for (const v of r.value) {
    assert.equal(v.ok, false);
    assert.equal(v.error.code, 429);
    assert.equal(v.error.headers['retry-after'], '7');
    assert.match(String(v.error.body.message), /ten_secondly_rolling/);
  }
  expectRecords(r.recs, { 6701: { firstname: [null, 'F0'] }, 6702: { firstname: [null, 'F1'] }, 6703: { firstname: [null, 'F2'] } },
    { outcome: 'upstream_error', upstream_status: 429, error: 'before_state_refused_by_crm' });
  /* metrics.h: a read is counted saved when a folded read answered the writes; a refused or
   * failed one answered none */
  assert.equal(r.folded.hubspot, 0, 'a refused folded read saved no read');

  /* a 5xx and a reset: 502 before_state_unavailable, as upstream_faults.test.js expects of one write */
  for (const [fault, upstreamStatus] of [[{ action: 'status', status: 500 }, 500], [{ action: 'reset' }, undefined]]) {
    r = await run(fault);
    assert.ok(r.s.hsBatchReads.length >= 1, JSON.stringify(fault));
    assert.deepEqual(r.s.hsGets, []);
    assert.deepEqual(r.s.hsPatches, [], 'nothing forwarded');
    for (const v of r.value) {
      assert.equal(v.ok, false);
      assert.equal(v.error.code, 502, `${JSON.stringify(fault)}: ${String(v.error)}`);
      assert.equal(v.error.headers['x-crmgate-error'], 'before_state_unavailable');
    }
    for (const rec of r.recs) {
      assert.equal(rec.outcome, 'upstream_error');
      assert.equal(rec.error, 'before_state_unavailable');
      assert.equal(rec.upstream_status ?? null, upstreamStatus ?? null);
    }
    assert.equal(r.recs.length, 3);
    assert.equal(r.folded.hubspot, 0);
  }
  /* an answer that is not a list of records: no before value is made up for anyone */
  r = await run({ action: 'status', status: 200, body: { status: 'COMPLETE' } });
  assert.deepEqual(r.s.hsGets, []);
  assert.deepEqual(r.s.hsPatches, [], 'nothing forwarded');
  for (const v of r.value) {
    assert.equal(v.ok, false);
    assert.equal(v.error.code, 502);
    assert.equal(v.error.headers['x-crmgate-error'], 'before_state_unavailable');
  }
  assert.equal(r.recs.length, 3);
  for (const rec of r.recs) assert.equal(rec.error, 'before_state_unavailable');
  assert.equal(r.folded.hubspot, 0);
  for (const id of ids) assert.equal((await hsState(id)).properties.firstname, { 6701: 'Eli', 6702: 'Flo', 6703: 'Gil' }[id], 'unchanged');

  /* Salesforce: a 503 on the collections retrieve */
  await fake.fault({ match: { method: 'GET', path: '^/services/data/v[0-9.]+/composite/sobjects/Contact$' }, action: 'status', status: 503, count: 1 });
  try {
    r = await step(() => settle([SFC[14], SFC[15]].map((Id) => sf().sobject('Contact').update({ Id, FirstName: 'Zz' }))));
  } finally {
    await fake.clearFaults();
  }
  assert.equal(r.s.sfRetrieves.length, 1);
  assert.deepEqual(r.s.sfGets, []);
  assert.deepEqual(r.s.sfWrites, []);
  for (const v of r.value) {
    assert.equal(v.ok, false);
    assert.match(String(v.error.message), /could not read the record's current state/, String(v.error));
  }
  for (const rec of r.recs) assert.equal(rec.error, 'before_state_unavailable');
  assert.equal(r.recs.length, 2);
  assert.equal(r.folded.salesforce, 0);
});

/* ---------------- 11. clients that go away ---------------- */

/* A raw PATCH of a HubSpot contact on its own connection; reset() cuts it with a TCP RST (a FIN
 * is a half-close: crmgate still answers). */
function rawPatch(id, props) {
  const body = JSON.stringify({ properties: props });
  const sock = net.connect(gate.port, '127.0.0.1');
  sock.on('error', () => {});
  const ready = new Promise((resolve) => sock.once('connect', resolve));
  ready.then(() => sock.write(`PATCH /hubspot/crm/v3/objects/contacts/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${HS_TOKEN}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`));
  return { sock, ready, reset: () => sock.resetAndDestroy() };
}

/*
 * Waits until crmgate logs a connection error after mark (the length of its log before the
 * reset: its log names the peer's address, not its port) and returns the connection's state then.
 */
async function resetSeen(mark) {
  const re = /: connection error in state (\d+)/;
  const deadline = Date.now() + 10000;
  for (;;) {
    const m = re.exec(gate.stderr().slice(mark));
    if (m) return Number(m[1]);
    if (Date.now() > deadline) throw new Error('crmgate never logged the reset (it logs it at debug level)');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const CONN_EXCHANGE = 3; /* proxy/conn.c enum conn_state */

/* A promise that rejects after ms: a group some bug left without an answer fails, not hangs. */
function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

test('a client that resets its connection while its read waits in the window, or is in flight, does not disturb the others; crmgate keeps serving', { skip: GATE }, async () => {
  /*
   * While the read waits in the window: the aborting write is sent first and reset a quarter
   * into the window. The window opens at the first pending read, so no earlier than the
   * aborting write was sent: crmgate logging the reset mid-exchange before that time plus the
   * window proves the read was still waiting. A try that missed it (the machine too slow) is
   * tried again.
   */
  let covered = false;
  for (let attempt = 0; attempt < 3 && !covered; attempt++) {
    const names = [`Pat${attempt}`, `Rex${attempt}`];
    const r = await step(async () => {
      const raw = rawPatch('6901', { firstname: `Gone${attempt}` });
      await raw.ready;
      const t0 = Date.now();
      const others = settle([
        hs().crm.contacts.basicApi.update('6902', { properties: { firstname: names[0] } }),
        hs().crm.contacts.basicApi.update('6903', { properties: { firstname: names[1] } }),
      ]);
      await new Promise((res) => setTimeout(res, Math.floor(WINDOW_MS / 4)));
      const mark = gate.stderr().length;
      raw.reset();
      const state = await resetSeen(mark);
      const inWindow = Date.now() < t0 + WINDOW_MS;
      return { results: await within(others, 30000, 'the others of the group'), state, inWindow };
    });
    const { results, state, inWindow } = r.value;
    for (const v of results) assert.equal(v.ok, true, String(v.error));
    assert.deepEqual(sorted(r.s.hsPatches.map((p) => p.id)), ['6902', '6903'], 'the reset write is not forwarded, the others are');
    const got = byRecord(r.recs);
    assert.equal(got['6902'].length, 1);
    assert.equal(got['6902'][0].outcome, 'allowed');
    assert.deepEqual(harness.fieldMap(got['6902'][0]).firstname[1], names[0]);
    assert.deepEqual(harness.fieldMap(got['6903'][0]).firstname[1], names[1]);
    assert.equal(got['6901'], undefined, 'no record of a write never sent');
    /* the group's read: the reset write's record left out, or still asked for; either way the
     * counter says what was saved */
    const asked = r.s.hsBatchReads.flatMap((b) => b.ids).concat(r.s.hsGets.map((g) => g.id));
    assert.ok(asked.includes('6902') && asked.includes('6903'), JSON.stringify(asked));
    assert.equal(new Set(asked).size, asked.length, JSON.stringify(asked));
    assert.equal(r.folded.hubspot, asked.length - readCount(r.s), `saved: ${JSON.stringify(r.s.hsBatchReads)}`);
    FOLDED.hubspot += r.folded.hubspot;
    covered = state === CONN_EXCHANGE && inWindow;
  }
  assert.ok(covered, 'in three tries crmgate never saw a reset while the read waited in the window');

  /* while the folded read is in flight: the fake holds the batch/read, the client resets, the
   * read answers, the others go on */
  await fake.fault({ match: { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }, action: 'latency', ms: 1500, count: 1 });
  try {
    const r = await step(async () => {
      const raw = rawPatch('6911', { firstname: 'Gone' });
      await raw.ready;
      const others = settle([
        hs().crm.contacts.basicApi.update('6912', { properties: { firstname: 'Tia2' } }),
        hs().crm.contacts.basicApi.update('6913', { properties: { lastname: 'Ulm' } }),
      ]);
      const deadline = Date.now() + 10000;
      while ((await sent()).hsBatchReads.length === 0) {
        if (Date.now() > deadline) throw new Error('the folded read never reached the fake');
        await new Promise((res) => setTimeout(res, 20));
      }
      const mark = gate.stderr().length;
      raw.reset();
      const state = await resetSeen(mark);
      return { results: await within(others, 30000, 'the others of the group'), state };
    });
    const { results, state } = r.value;
    assert.equal(state, CONN_EXCHANGE);
    for (const v of results) assert.equal(v.ok, true, String(v.error));
    assert.equal(r.s.hsBatchReads.length, 1);
    assert.deepEqual(sorted(r.s.hsBatchReads[0].ids), ['6911', '6912', '6913'], 'the reset came after the read left');
    assert.deepEqual(sorted(r.s.hsPatches.map((p) => p.id)), ['6912', '6913']);
    const got = byRecord(r.recs);
    assert.deepEqual(harness.fieldMap(got['6912'][0]), { firstname: ['Tia', 'Tia2'] });
    assert.deepEqual(harness.fieldMap(got['6913'][0]), { lastname: [null, 'Ulm'] });
    assert.equal(got['6911'], undefined);
    assert.equal(r.folded.hubspot, 2);
    FOLDED.hubspot += 2;
  } finally {
    await fake.clearFaults();
  }
  assert.equal((await hsState(6911)).properties.firstname, 'Sam', 'the reset write never reached the CRM');
  assert.equal((await hsState(6901)).properties.firstname, 'Oda');

  /* every client of a group resets: while the reads wait (the window's queue empties), and
   * while the folded read is in flight (crmgate drops it); the next writes are served */
  for (const inFlight of [false, true]) {
    if (inFlight) await fake.fault({ match: { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }, action: 'latency', ms: 1500, count: 1 });
    try {
      await fake.clearRequests();
      const raws = [rawPatch('6901', { firstname: 'GoneA' }), rawPatch('6911', { firstname: 'GoneB' })];
      await Promise.all(raws.map((x) => x.ready));
      if (inFlight) {
        const deadline = Date.now() + 10000;
        while ((await sent()).hsBatchReads.length === 0) {
          if (Date.now() > deadline) throw new Error('the folded read never reached the fake');
          await new Promise((res) => setTimeout(res, 20));
        }
      } else {
        await new Promise((res) => setTimeout(res, Math.floor(WINDOW_MS / 4)));
      }
      const mark = gate.stderr().length;
      for (const x of raws) x.reset();
      for (let seen = 0, deadline = Date.now() + 10000; seen < 2;) {
        seen = (gate.stderr().slice(mark).match(/: connection error in state \d+/g) || []).length;
        if (Date.now() > deadline) throw new Error(`crmgate logged ${seen} of the 2 resets`);
        await new Promise((res) => setTimeout(res, 20));
      }
    } finally {
      await fake.clearFaults();
    }
    const next = await step(() => Promise.all([
      hs().crm.contacts.basicApi.update('6902', { properties: { lastname: `After${inFlight}` } }),
      hs().crm.contacts.basicApi.update('6912', { properties: { lastname: `After${inFlight}` } }),
    ]));
    assert.deepEqual(next.value.map((v) => v.properties.lastname), [`After${inFlight}`, `After${inFlight}`]);
    assert.equal(next.s.hsBatchReads.length, 1);
    assert.deepEqual(sorted(next.s.hsBatchReads[0].ids), ['6902', '6912'], 'a new group, the reset ones gone');
    assert.deepEqual(sorted(next.s.hsPatches.map((p) => p.id)), ['6902', '6912'], 'no reset write forwarded');
    assert.equal(next.folded.hubspot, 1);
    FOLDED.hubspot += 1;
  }
  assert.equal((await hsState(6901)).properties.firstname, 'Oda');
  assert.equal((await hsState(6911)).properties.firstname, 'Sam');
  /* crmgate keeps serving */
  const r = await hs().crm.contacts.basicApi.getById('6912', ['firstname']);
  assert.equal(r.properties.firstname, 'Tia2');
});

/* ---------------- timeouts, shutdown, custody ---------------- */

test('a folded read that runs out of upstream_timeout_ms: every write of the group gets 504, nothing forwarded', { skip: GATE }, async () => {
  const timeout = process.env.CRMGATE_SLOW ? 15000 : 1500;
  const g = await startGate({ before_read_window_ms: WINDOW_MS, upstream_timeout_ms: timeout });
  try {
    await fake.fault({ match: { method: 'POST', path: '^/crm/v3/objects/contacts/batch/read$' }, action: 'latency', ms: timeout + 1500, count: 1 });
    let r;
    try {
      r = await step(() => settle(['7601', '7602'].map((id) => hs(HS_TOKEN, g).crm.contacts.basicApi.update(id, { properties: { firstname: 'Late' } }))), g);
    } finally {
      await fake.clearFaults();
    }
    assert.equal(r.s.hsBatchReads.length, 1);
    assert.deepEqual(r.s.hsGets, []);
    for (const v of r.value) {
      assert.equal(v.ok, false);
      assert.equal(v.error.code, 504, String(v.error));
      assert.equal(v.error.headers['x-crmgate-error'], 'before_state_unavailable');
    }
    const recs = harness.readAuditRaw(g.stateDir);
    assert.equal(recs.length, 2);
    for (const rec of recs) {
      assert.equal(rec.outcome, 'upstream_error');
      assert.equal(rec.error, 'before_state_unavailable');
    }
    /* the fake answers the read late; no write follows it */
    const deadline = Date.now() + timeout + 10000;
    while (!(await fake.requests()).some((q) => q.response && /batch\/read$/.test(q.path))) {
      assert.ok(Date.now() < deadline, 'the held read never ended');
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.deepEqual((await sent()).hsPatches, [], 'nothing forwarded');
    assert.equal((await hsState(7601)).properties.firstname, 'Dov');
  } finally {
    await g.stop();
  }
});

test('SIGTERM while reads wait in the window: the writes finish or fail cleanly, each as its record says, and crmgate exits 0', { skip: GATE }, async () => {
  const g = await startGate({ before_read_window_ms: 1000 });
  let stopped = false;
  try {
    await fake.clearRequests();
    const ids = ['7701', '7702', '7703'];
    const writes = settle(ids.map((id) => hs(HS_TOKEN, g).crm.contacts.basicApi.update(id, { properties: { lastname: `Term${id}` } })));
    /* a quarter of the window lets the requests arrive and queue their reads (for coverage
     * only: whenever the SIGTERM lands, what is checked below must hold) */
    await new Promise((res) => setTimeout(res, 250));
    const code = await g.stop(); /* throws unless the exit is 0 after SIGTERM */
    stopped = true;
    assert.equal(code, 0);
    const results = await within(writes, 30000, 'the writes');
    const s = await sent();
    const recs = byRecord(harness.readAuditRaw(g.stateDir));
    const patched = new Set(s.hsPatches.map((p) => p.id));
    ids.forEach((id, i) => {
      const v = results[i];
      if (v.ok) {
        assert.ok(patched.has(id), `${id} answered 200 but never reached the CRM`);
        assert.equal(recs[id][0].outcome, 'allowed');
        assert.deepEqual(harness.fieldMap(recs[id][0]), { lastname: [null, `Term${id}`] });
      } else {
        assert.ok(!patched.has(id) || (recs[id] && recs[id][0].outcome === 'allowed'), `${id}: failed (${v.error}) yet forwarded without its record`);
      }
    });
    /* what was read: reported by the suite's log when CRMGATE_FOLD_DEBUG is set */
    if (process.env.CRMGATE_FOLD_DEBUG) console.error('SIGTERM:', JSON.stringify({ results: results.map((v) => (v.ok ? 'ok' : String(v.error))), batch: s.hsBatchReads.map((b) => b.ids), gets: s.hsGets.map((q) => q.id), patched: [...patched] }));
    for (const id of ids) assert.ok(!recs[id] || recs[id].length === 1, `${id}: one record at most`);
  } finally {
    if (!stopped) await g.stop().catch(() => {});
  }
});

test('custody: writes of different keys with the same injected integration token fold; another integration\'s token reads alone', { skip: GATE }, async () => {
  const util = require('./custody_util.js');
  const OPEN = { schema_read: true, objects: { '*': { read: '*', write: '*', actions: { update: true } } } };
  const c = await util.startCustody({
    rules: { 'acme.json': { workspace: 'acme', hubspot: OPEN }, 'globex.json': { workspace: 'globex', hubspot: OPEN } },
    config: { before_read_window_ms: WINDOW_MS }, workers: 1,
  });
  try {
    const ACME_TOKEN = 'pat-na1-acme-fold-workspace-token-0001';
    const GLOBEX_TOKEN = 'pat-na1-globex-fold-workspace-token-02';
    util.addIntegration(c.gate, ['--workspace', 'acme', '--crm', 'hubspot', '--type', 'private-app'], ACME_TOKEN);
    util.addIntegration(c.gate, ['--workspace', 'globex', '--crm', 'hubspot', '--type', 'private-app'], GLOBEX_TOKEN);
    const k1 = util.newKey(c.gate, ['--workspace', 'acme', '--kind', 'workflow', '--workflow', 'renewals']);
    const k2 = util.newKey(c.gate, ['--workspace', 'acme', '--kind', 'workflow', '--workflow', 'onboarding']);
    const k3 = util.newKey(c.gate, ['--workspace', 'globex', '--kind', 'workflow', '--workflow', 'renewals']);
    await c.fake.seed({ hubspot: { objects: { contacts: [contact(501, { firstname: 'Ada' }), contact(502, { firstname: 'Bob' }), contact(503, { firstname: 'Cid' })] } } });
    await c.fake.clearRequests();
    const client = (key) => new Client({ accessToken: key, basePath: `${c.gate.url}/hubspot` });
    await Promise.all([
      client(k1.key).crm.contacts.basicApi.update('501', { properties: { firstname: 'Ada2' } }),
      client(k2.key).crm.contacts.basicApi.update('502', { properties: { lastname: 'Bobson' } }),
      client(k3.key).crm.contacts.basicApi.update('503', { properties: { firstname: 'Cid2' } }),
    ]);
    const s = sortOut(await c.fake.requests());
    assert.equal(s.hsBatchReads.length, 1, JSON.stringify(s.hsBatchReads));
    assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['501', '502'], 'the two acme keys share the workspace integration');
    assert.equal(s.hsBatchReads[0].auth, `Bearer ${ACME_TOKEN}`);
    assert.deepEqual(s.hsGets.map((g) => [g.id, g.auth]), [['503', `Bearer ${GLOBEX_TOKEN}`]]);
    for (const q of await c.fake.requests()) assert.ok(!JSON.stringify(q).includes('cgk_'), 'no key reaches the CRM');
    const recs = byRecord(harness.readAuditRaw(c.gate.stateDir).filter((r) => r.verb === 'update'));
    assert.deepEqual(harness.fieldMap(recs['501'][0]), { firstname: ['Ada', 'Ada2'] });
    assert.equal(recs['501'][0].workflow, 'renewals');
    assert.deepEqual(harness.fieldMap(recs['502'][0]), { lastname: [null, 'Bobson'] });
    assert.equal(recs['502'][0].workflow, 'onboarding');
    assert.deepEqual(harness.fieldMap(recs['503'][0]), { firstname: ['Cid', 'Cid2'] });
    assert.equal(recs['503'][0].workspace, 'globex');
    assert.equal(sample(await metrics(c.gate), 'crmgate_before_reads_folded_total', { crm: 'hubspot' }), 1);
  } finally {
    await c.stop();
  }
});

/* ---------------- 10. window 0 and the counters ---------------- */

test('window 0 (the default): sequential writes are read exactly as before, one single GET each; concurrent ones every read accounted for', { skip: GATE }, async () => {
  const g0 = await startGate({}); /* no before_read_window_ms: the default, 0 */
  try {
    const { s, folded } = await step(async () => {
      await hs(HS_TOKEN, g0).crm.contacts.basicApi.update('6801', { properties: { firstname: 'Hob2' } });
      await hs(HS_TOKEN, g0).crm.contacts.basicApi.update('6802', { properties: { firstname: 'Ivy2', lastname: 'Ives' } });
      await hs(HS_TOKEN, g0).crm.contacts.basicApi.update('6803', { properties: { lastname: 'Jones' } });
      await sf(SF_TOKEN, VERSION, g0).sobject('Contact').update({ Id: SFC[0], Title: 'Treasurer' });
    }, g0);
    assert.deepEqual(s.hsBatchReads, []);
    assert.deepEqual(s.sfRetrieves, []);
    /* the very query strings crmgate sent before folding existed */
    assert.deepEqual(s.hsGets.map((g) => `${g.id}?${g.raw}`), [
      '6801?archived=false&properties=firstname&propertiesWithHistory=firstname',
      '6802?archived=false&properties=firstname,lastname&propertiesWithHistory=firstname,lastname',
      '6803?archived=false&properties=lastname&propertiesWithHistory=lastname',
    ]);
    assert.deepEqual(s.sfGets.map((g) => [g.ver, g.id, g.fields]), [[VERSION, SFC[0], ['Id', 'Title']]]);
    assert.deepEqual(folded, { hubspot: 0, salesforce: 0 });

    /* concurrent writes under window 0 fold only when they meet in one turn of the loop, which
     * this test cannot arrange; whatever happened, every write was read once, and the counter
     * says how many reads were saved */
    const ids = ['6811', '6812', '6813', '6814'];
    const c = await step(() => Promise.all(ids.map((id) => hs(HS_TOKEN, g0).crm.contacts.basicApi.update(id, { properties: { lastname: `L${id}` } }))), g0);
    const asked = c.s.hsBatchReads.flatMap((b) => b.ids).concat(c.s.hsGets.map((g) => g.id));
    assert.deepEqual(sorted(asked), ids, 'each record read exactly once');
    assert.equal(c.folded.hubspot, ids.length - readCount(c.s), `saved reads: ${JSON.stringify(c.s.hsBatchReads)}`);
  } finally {
    await g0.stop();
  }
  /* the window gate: a write alone is read with the single GET, as today */
  const one = await step(() => hs().crm.contacts.basicApi.update('6801', { properties: { firstname: 'Hob3' } }));
  assert.deepEqual(one.s.hsBatchReads, []);
  assert.deepEqual(one.s.hsGets.map((g) => `${g.id}?${g.raw}`), ['6801?archived=false&properties=firstname&propertiesWithHistory=firstname']);
  assert.deepEqual(one.folded, { hubspot: 0, salesforce: 0 });
  assert.deepEqual(harness.fieldMap(one.recs[0]), { firstname: ['Hob2', 'Hob3'] });
});

/* ---------------- a merged-away id ---------------- */

test('HubSpot dry-run: a concurrent update of a merged-away id has the primary record as its before-state, as its own read (which follows the merge) has it', { skip: GATE }, async () => {
  await hsDirect().crm.contacts.basicApi.merge({ primaryObjectId: '8101', objectIdToMerge: '8102' });
  const { value, s, recs, folded } = await step(() => settle([
    hs(HS_DRY).crm.contacts.basicApi.update('8102', { properties: { lastname: 'Merged' } }),
    hs(HS_DRY).crm.contacts.basicApi.update('8103', { properties: { firstname: 'Siv2' } }),
  ]));
  assert.equal(s.hsBatchReads.length, 1, JSON.stringify(s));
  assert.deepEqual(sorted(s.hsBatchReads[0].ids), ['8102', '8103']);
  assert.equal(value[0].ok, true, `the merged-away id resolves: ${value[0].error && JSON.stringify(value[0].error.body)}`);
  assert.equal(value[0].value.properties.lastname, 'Merged');
  assert.equal(value[1].ok, true);
  const got = byRecord(recs);
  assert.deepEqual(harness.fieldMap(got['8102'][0]), { lastname: ['Quist', 'Merged'] }, 'the primary\'s before, as the single read gives');
  assert.deepEqual(harness.fieldMap(got['8103'][0]), { firstname: ['Siv', 'Siv2'] });
  /* the one the batch could not place is read on its own; the other keeps the folded answer */
  assert.deepEqual(s.hsGets.map((g) => g.id), ['8102']);
  assert.equal(folded.hubspot, 0, 'two writes, two reads: nothing saved');
});

test('the counter crmgate_before_reads_folded_total matches every fold of this suite', { skip: GATE }, async () => {
  const m = await metrics();
  assert.match(m, /^# TYPE crmgate_before_reads_folded_total counter$/m);
  assert.equal(sample(m, 'crmgate_before_reads_folded_total', { crm: 'hubspot' }), FOLDED.hubspot);
  assert.equal(sample(m, 'crmgate_before_reads_folded_total', { crm: 'salesforce' }), FOLDED.salesforce);
});
