'use strict';
/*
 * Policy bypass attempts, end to end, through the real binary against the fake CRMs, for both
 * CRMs (parity is a rule): an agent that tries to read or write what its workspace rules forbid,
 * or to write without an audit record.
 *
 *   - every attempt in the tables is refused: 403 (or Salesforce's 400 MALFORMED_QUERY) in the
 *     CRM's own error shape, never 401/429/5xx, and the fake receives nothing;
 *   - the bugs this review found each have a test of their own below the tables;
 *   - every request the fake records as a write has an audit record whose fields are what the
 *     fake received.
 *
 *   node --test tests/e2e/policy_bypass.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const HS_TOKEN = 'pat-na1-b1a55000-0000-0000-0000-000000000001';
const SF_TOKEN = '00DHs0000000001!AQbypassreviewtoken';
const SF_KEYED = '00DHs0000000001!AQbypasskeyedtoken';
const V = '62.0';
const DATA = `/services/data/v${V}`;

const RULES = {
  workspace: 'bypass',
  description: 'e2e: a restrictive workspace for both CRMs',
  hubspot: {
    objects: {
      contacts: {
        read: ['email', 'firstname', 'lastname', 'lifecyclestage'],
        write: ['lifecyclestage'],
        actions: { associate: true, upsert: true },
      },
      deals: { read: ['dealname', 'dealstage'], write: ['dealstage'], actions: { create: true, associate: true } },
      companies: { read: ['name'] },
    },
  },
  salesforce: {
    objects: {
      Account: { read: ['Name', 'Ext__c'], write: ['Name'], actions: { create: true, upsert: true } },
      Contact: { read: ['LastName', 'Email', 'AccountId'], write: ['LastName'], actions: { upsert: true } },
      Opportunity: { read: ['Name', 'StageName', 'AccountId'], write: ['StageName'] },
    },
  },
};

function sid(prefix, n) {
  const id15 = `${prefix}Byp0${String(n).padStart(8, '0')}`;
  return id15 + idChecksum(id15);
}
const ACC = sid('001', 1);
const CON = sid('003', 1);
const OPP = sid('006', 1);

const SEED_HS = {
  hubspot: {
    /* a portal's own label for deals -> tickets (tickets are not in the rules) */
    associationLabels: [{ from: 'deals', to: 'tickets', label: 'Escalation', typeId: 1001, reverseTypeId: 1002 }],
    objects: {
      contacts: [{ id: '101', properties: { email: 'ada@acme.test', firstname: 'Ada', lastname: 'Lovelace', lifecyclestage: 'lead', phone: '+1 555 0101' } }],
      deals: [{ id: '301', properties: { dealname: 'Renewal', dealstage: 'appointmentscheduled', amount: '1200' } }],
      companies: [{ id: '201', properties: { name: 'Acme', phone: '555' } }],
      tickets: [{ id: '401', properties: { subject: 'secret' } }],
    },
  },
};
const SEED_SF = {
  salesforce: {
    customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true, unique: true }] },
    objects: {
      Account: [{ Id: ACC, Name: 'Acme', Phone: '555-0100', Ext__c: 'A-1' }],
      Contact: [{ Id: CON, LastName: 'Seeded', Email: 'sam@acme.test', Phone: '555-0101', AccountId: ACC }],
      Opportunity: [{ Id: OPP, Name: 'Launch', StageName: 'Prospecting', CloseDate: '2030-03-15', Amount: 5, AccountId: ACC }],
    },
  },
};

/* a second workspace that may write Account.Ext__c (an upsert's key) */
const KEYED = {
  workspace: 'keyed',
  salesforce: { objects: { Account: { read: ['Name', 'Ext__c'], write: ['Name', 'Ext__c'], actions: { upsert: true } } } },
};

let stack;
let newRecords;

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({
    gate: {
      rules: { 'bypass.json': RULES, 'keyed.json': KEYED },
      callers: [
        { token: SF_KEYED, workspace: 'keyed', user: 'agent@keyed', kind: 'workflow' },
        { token: HS_TOKEN, workspace: 'bypass', user: 'agent@bypass', kind: 'workflow' },
        { token: SF_TOKEN, workspace: 'bypass', user: 'agent@bypass', kind: 'workflow' },
      ],
    },
  });
  newRecords = harness.auditCursor(stack.gate.stateDir);
});

after(async () => {
  if (stack) await stack.stop();
});

beforeEach(async () => {
  if (!stack) return;
  await stack.fake.reset();
  await stack.fake.seed(SEED_HS);
  await stack.fake.seed(SEED_SF);
  await stack.fake.clearRequests();
  newRecords();
});

/* A raw HTTP request to crmgate; body: an object (JSON), a string or a Buffer, sent as is. */
function raw(method, path, { token, body, headers = {} } = {}) {
  const payload = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: stack.gate.port, method, path,
      headers: {
        authorization: `Bearer ${token}`, accept: 'application/json',
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
const hs = (method, path, opts = {}) => raw(method, `/hubspot${path}`, { token: HS_TOKEN, ...opts });
const sf = (method, path, opts = {}) => raw(method, `/salesforce${path}`, { token: SF_TOKEN, ...opts });
const soql = (q) => `${DATA}/query?q=${encodeURIComponent(q)}`;

/* A refusal in the CRM's own shape, never 401/429/5xx, and nothing reached the fake. */
async function expectRefused(crm, r, what, { status = 403, re } = {}) {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  assert.equal(r.headers['x-crmgate-decision'], 'deny', `${what}: decision header`);
  assert.ok(r.json, `${what}: JSON body: ${r.text}`);
  if (crm === 'hubspot') {
    assert.equal(r.json.status, 'error', what);
    assert.equal(r.json.category, 'MISSING_SCOPES', what);
    assert.match(r.json.message, /^crmgate denied this call \(rule /, what);
    if (re) assert.match(r.json.message, re, what);
  } else {
    assert.ok(Array.isArray(r.json) && r.json.length === 1, `${what}: Salesforce error array: ${r.text}`);
    assert.equal(r.json[0].errorCode, status === 400 ? 'MALFORMED_QUERY' : 'INSUFFICIENT_ACCESS_OR_READONLY', what);
    assert.match(r.json[0].message, /^crmgate denied this call \(rule /, what);
    if (re) assert.match(r.json[0].message, re, what);
  }
  const log = await stack.fake.requests();
  assert.deepEqual(log.map((x) => `${x.method} ${x.path}?${x.query}`), [], `${what}: a refused call must not reach the CRM`);
}

/* ======================= bugs found by this review ======================= */

test('bug: a Salesforce upsert by external id writes the external-id field, so it must be writable', { skip: GATE }, async () => {
  /* Ext__c is readable (a lookup by it is allowed) but not writable: an upsert that inserts
   * sets Ext__c, as HubSpot's batch upsert sets its idProperty. */
  const r = await sf('PATCH', `${DATA}/sobjects/Account/Ext__c/B-2`, { body: { Name: 'New Co' } });
  await expectRefused('salesforce', r, 'upsert inserting Ext__c', { re: /Ext__c/ });
  const st = (await stack.fake.state()).salesforce;
  assert.ok(!st.objects.Account.some((a) => a.Ext__c === 'B-2'), 'no account was created with Ext__c = B-2');
});

test('bug: a Salesforce upsert by external id is audited with the external-id field it sets', { skip: GATE }, async () => {
  /* keyed: a workspace where Ext__c may be written. The CRM inserts Ext__c = B-2; the record
   * must say so (it named only Name). */
  const r = await sf('PATCH', `${DATA}/sobjects/Account/Ext__c/B-2`, { token: SF_KEYED, body: { Name: 'New Co' } });
  assert.equal(r.status, 201, r.text);
  const created = (await stack.fake.state()).salesforce.objects.Account.find((a) => a.Ext__c === 'B-2');
  assert.ok(created, 'the fake inserted the account with Ext__c = B-2');
  const recs = newRecords();
  assert.equal(recs.length, 1, JSON.stringify(recs));
  assert.equal(recs[0].verb, 'upsert');
  assert.equal(recs[0].outcome, 'allowed');
  assert.deepEqual(harness.fieldMap(recs[0]), { Name: [null, 'New Co'], Ext__c: [null, 'B-2'] });
});

test('bug: a HubSpot create cannot link an unlisted object type through a portal label placed before a defined type', { skip: GATE }, async () => {
  /* 1001 is the portal's deals -> tickets label; 341 is HUBSPOT_DEFINED deals -> companies.
   * crmgate took the target from 341 (companies, listed); the CRM took it from the first type
   * id and linked the new deal to ticket 401. */
  const assoc = { to: { id: '401' }, types: [{ associationCategory: 'USER_DEFINED', associationTypeId: 1001 }, { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 341 }] };
  const single = await hs('POST', '/crm/v3/objects/deals', { body: { properties: { dealstage: 'qualifiedtobuy' }, associations: [assoc] } });
  await expectRefused('hubspot', single, 'create with a label first', { re: /association labels \(USER_DEFINED\)/ });
  const batch = await hs('POST', '/crm/v3/objects/deals/batch/create', { body: { inputs: [{ properties: { dealstage: 'qualifiedtobuy' }, associations: [assoc] }] } });
  await expectRefused('hubspot', batch, 'batch create with a label first', { re: /association labels/ });
  const st = (await stack.fake.state()).hubspot;
  assert.equal(st.objects.deals.length, 1, 'no deal was created');
  assert.ok(!st.associations.some((a) => a.to.type === 'tickets'), `no link to a ticket: ${JSON.stringify(st.associations)}`);
  /* still allowed: a HUBSPOT_DEFINED type of a listed pair, and the label through v4, whose path names both objects */
  const ok = await hs('POST', '/crm/v3/objects/deals', { body: { properties: { dealstage: 'qualifiedtobuy' }, associations: [{ to: { id: '201' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 341 }] }] } });
  assert.equal(ok.status, 201, ok.text);
});

test('bug: the agent cannot ask the CRM for an answer crmgate does not filter (Accept: application/xml)', { skip: GATE }, async () => {
  /* Salesforce answers XML when asked; crmgate refuses a 2xx answer that is not JSON but relays
   * an error that is not JSON as it is, so an XML DUPLICATES_DETECTED (which lists the matching
   * records' fields) would pass unfiltered. Upstream, crmgate now always asks for JSON. */
  for (const [call, path] of [[sf, `${DATA}/sobjects/Account/${ACC}?fields=Name`], [hs, '/crm/v3/objects/contacts/101?properties=email']]) {
    await stack.fake.clearRequests();
    const r = await call('GET', path, { headers: { accept: 'application/xml, text/xml;q=0.9' } });
    assert.equal(r.status, 200, r.text);
    const log = await stack.fake.requests();
    assert.equal(log.length, 1, JSON.stringify(log));
    assert.equal(log[0].headers.accept, 'application/json', `${path}: the CRM was asked for JSON`);
  }
  /* and an answer that is not JSON is still refused, never relayed unfiltered */
  await stack.fake.fault({ match: { method: 'GET', path: `^${DATA}/sobjects/Account/` }, action: 'status', status: 200, body: '<Account><Phone>555-0100</Phone></Account>', headers: { 'Content-Type': 'application/xml' } });
  const x = await sf('GET', `${DATA}/sobjects/Account/${ACC}?fields=Name`);
  assert.notEqual(x.status, 200, x.text);
  assert.ok(!x.text.includes('555-0100'), `no unfiltered value: ${x.text}`);
});

test('bug: the legacy "get all" listings (deals/v1/deal/paged, companies/v2/companies/paged) are not records', { skip: GATE }, async () => {
  /* They sat where a legacy record id goes, so crmgate took them for a read of a record called
   * "paged" and relayed {"deals": [...]} (HubSpot's documented shape, which the fake does not
   * serve: a fault plays it) without filtering: every property of every record. */
  const prop = (value) => ({ value, timestamp: 1700000000000, source: 'API', sourceId: null, versions: [] });
  const pages = [
    ['/deals/v1/deal/paged?includeAssociations=true&properties=amount', { deals: [{ portalId: 1, dealId: 301, isDeleted: false, properties: { dealname: prop('Renewal'), amount: prop('1200') } }], hasMore: false, offset: 301 }],
    ['/companies/v2/companies/paged?properties=phone', { companies: [{ portalId: 1, companyId: 201, isDeleted: false, properties: { name: prop('Acme'), phone: prop('555') } }], 'has-more': false, offset: 201 }],
  ];
  for (const [path, body] of pages) {
    await stack.fake.fault({ match: { method: 'GET', path: `^${path.split('?')[0]}$` }, action: 'status', status: 200, body });
    const r = await hs('GET', path);
    await expectRefused('hubspot', r, path, { re: /legacy record id "paged" is not numeric/ });
    assert.ok(!r.text.includes('1200') && !r.text.includes('555'), r.text);
    await stack.fake.clearFaults();
  }
});

test('bug: a byte range of an answer is never asked for, and a partial answer (206) is never relayed', { skip: GATE }, async () => {
  /* Range went upstream as sent. Cut to its "properties" object, a record reads as an object
   * with no record in it, which the filter passes whole: {"email": ..., "phone": ...}. */
  await stack.fake.clearRequests();
  const r = await hs('GET', '/crm/v3/objects/contacts/101?properties=email', { headers: { range: 'bytes=10-80', 'if-range': 'x' } });
  assert.equal(r.status, 200, r.text);
  const log = await stack.fake.requests();
  assert.equal(log[0].headers.range, undefined, 'no Range upstream');
  assert.equal(log[0].headers['if-range'], undefined, 'no If-Range upstream');
  const parts = [
    [hs, '/crm/v3/objects/contacts/101?properties=email', '^/crm/v3/objects/contacts/101$', { email: 'ada@acme.test', phone: '+1 555 0101' }],
    [sf, `${DATA}/sobjects/Contact/${CON}?fields=LastName`, `^${DATA}/sobjects/Contact/`, { LastName: 'Seeded', Phone: '555-0101' }],
  ];
  for (const [call, path, re, body] of parts) {
    await stack.fake.fault({ match: { method: 'GET', path: re }, action: 'status', status: 206, body, headers: { 'Content-Range': 'bytes 10-80/200' } });
    const p = await call('GET', path);
    assert.notEqual(p.status, 206, p.text);
    assert.ok(!/555-?0101|555 0101/.test(p.text), `${path}: no unfiltered value: ${p.text}`);
    await stack.fake.clearFaults();
  }
});
