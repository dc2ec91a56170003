'use strict';
/*
 * The unmodified official jsforce 3.10.16 (pinned; 3.10.19+ needs undici 8 and Node >= 22) against the fake Salesforce, directly and through
 * crmgate (instanceUrl = http://127.0.0.1:GATE/salesforce). The same scenario runs on a freshly
 * reset and seeded fake each time; jsforce must see the same results both ways (timestamps,
 * record ids and API-usage counters aside) and the fake must end in the same state.
 *
 *   node --test tests/e2e/salesforce_sdk.test.js       (gate tests are skipped until ./crmgate exists)
 */

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const harness = require('./harness.js');
const { idChecksum } = require('../fakecrm/salesforce.js');

const TOKEN = '00DHs0000000001!AQsdktesttoken';
const VERSION = '62.0';
const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const BULK = 450;

const jsforce = require('jsforce');

function sid(prefix, n) {
  const id15 = prefix + 'Seed' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}

const ACME = sid('001', 1);
const SEED = {
  salesforce: {
    customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true }] },
    objects: {
      Account: [
        { Id: ACME, Name: 'Acme Rockets', Industry: 'Aerospace', Ext__c: 'ACME-1' },
        { Id: sid('001', 2), Name: 'Dup A', Ext__c: 'DUP' },
        { Id: sid('001', 3), Name: 'Dup B', Ext__c: 'DUP' },
        ...Array.from({ length: BULK }, (_, i) => ({ Name: `Bulk ${String(i).padStart(3, '0')}` })),
      ],
      Contact: [{ Id: sid('003', 1), LastName: 'Seeded', FirstName: 'Sam', AccountId: ACME, Email: 'sam@acme.test' }],
      Opportunity: [
        { Id: sid('006', 1), Name: 'Acme launch', StageName: 'Closed Won', CloseDate: '2024-03-15', Amount: 50000, AccountId: ACME },
        { Id: sid('006', 2), Name: 'Acme refit', StageName: 'Prospecting', CloseDate: '2024-09-01', Amount: 1200, AccountId: ACME },
      ],
    },
  },
};

let fake;  /* one fake for every run; reset and reseeded before each scenario */
let gate;  /* crmgate in front of the same fake, when built */

before(async () => {
  fake = await harness.startFake();
  if (!GATE) gate = await harness.startCrmgate({ upstreams: { hubspot: fake.url, salesforce: fake.url } });
});

after(async () => {
  if (gate) await gate.stop();
  if (fake) await fake.stop();
});

function connect(instanceUrl) {
  return new jsforce.Connection({ instanceUrl, accessToken: TOKEN, version: VERSION });
}

const gateBase = () => `${gate.url}/salesforce`;

/* ---------------- the scenario ---------------- */

/*
 * Runs every jsforce call the suite covers and returns a transcript {step: {ok} | {error}}.
 * Errors keep what jsforce exposes: errorCode, name, message.
 */
async function scenario(conn) {
  const t = {};
  const step = async (name, fn) => {
    try { t[name] = { ok: await fn() }; }
    catch (e) { t[name] = { error: { errorCode: e.errorCode, name: e.name, message: String(e.message) } }; }
    return t[name].ok;
  };
  const Account = conn.sobject('Account');
  const Contact = conn.sobject('Contact');

  await step('describeGlobal', async () => (await conn.describeGlobal()).sobjects.map((s) => [s.name, s.keyPrefix]));
  await step('describe', async () => {
    const d = await Account.describe();
    const f = (n) => d.fields.find((x) => x.name === n);
    return {
      name: d.name, keyPrefix: d.keyPrefix,
      Name: [f('Name').type, f('Name').createable, f('Name').nillable],
      CreatedDate: [f('CreatedDate').type, f('CreatedDate').createable, f('CreatedDate').updateable],
      Ext__c: [f('Ext__c').externalId, f('Ext__c').custom],
      contacts: d.childRelationships.some((c) => c.relationshipName === 'Contacts'),
    };
  });

  /* sObject rows */
  const created = await step('create', () => Account.create({ Name: 'Jetsons Inc', Industry: 'Robotics' }));
  const jetsons = created ? created.id : 'missing';
  await step('retrieve', async () => {
    const r = await Account.retrieve(jetsons);
    return { type: r.attributes.type, Id: r.Id, Name: r.Name, Industry: r.Industry, Phone: r.Phone, IsDeleted: r.IsDeleted };
  });
  await step('retrieveFields', () => Account.retrieve(jetsons, { fields: ['Name', 'Industry'] }));
  await step('update', () => Account.update({ Id: jetsons, Industry: 'Space', Phone: '555-0100' }));
  await step('retrieveAfterUpdate', () => Account.retrieve(jetsons, { fields: ['Industry', 'Phone'] }));

  /* external ids */
  await step('upsertInsert', () => Account.upsert({ Name: 'Ext One', Ext__c: 'X-1' }, 'Ext__c'));
  await step('upsertUpdate', () => Account.upsert({ Name: 'Ext One (renamed)', Ext__c: 'X-1' }, 'Ext__c'));
  await step('upsertMultiple', () => Account.upsert({ Name: 'Ambiguous', Ext__c: 'DUP' }, 'Ext__c'));

  /* collections */
  const many = await step('createMany', () => Contact.create([
    { LastName: 'Alpha', AccountId: jetsons },
    { LastName: 'Beta', AccountId: jetsons },
    { FirstName: 'No last name' },
  ]));
  const [alpha, beta] = many ? many.map((r) => r.id) : ['missing', 'missing'];
  await step('updateMany', () => Contact.update([{ Id: alpha, Title: 'CEO' }, { Id: beta, Title: 'CTO' }]));
  await step('retrieveMany', async () => (await Contact.retrieve([alpha, beta, sid('003', 1)]))
    .map((r) => r && [r.attributes.type, r.Id, r.LastName, r.Title, r.AccountId, r.Name]));
  await step('createAllOrNone', () => Account.create([{ Name: 'Rolled back' }, { Industry: 'no name' }], { allOrNone: true }));

  /* SOQL */
  await step('queryParent', () => conn.query(
    "SELECT Id, LastName, Title, Account.Name, Account.Owner.Name FROM Contact WHERE Account.Name = 'Jetsons Inc' ORDER BY LastName"));
  await step('findBuilder', () => Contact.find({ 'Account.Name': { $like: 'Jet%' }, Title: { $in: ['CEO', 'CTO'] } }, ['LastName', 'Account.Name'])
    .sort('-LastName').limit(5).execute());
  await step('findAllFields', async () => (await conn.sobject('Opportunity').find({ StageName: 'Closed Won' }))
    .map((o) => [o.Name, o.Amount, o.IsWon, o.CloseDate, Object.keys(o).length > 30]));
  await step('subquery', () => conn.query(
    `SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName), (SELECT Name, Amount FROM Opportunities WHERE Amount > 10000) FROM Account WHERE Id = '${ACME}'`));
  await step('autoFetch', async () => {
    const r = await conn.query("SELECT Id, Name FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name")
      .run({ autoFetch: true, maxFetch: 1000, headers: { 'Sforce-Query-Options': 'batchSize=200' } });
    return { totalSize: r.totalSize, done: r.done, n: r.records.length, first: r.records[0].Name, last: r.records[r.records.length - 1].Name, distinct: new Set(r.records.map((x) => x.Id)).size };
  });
  await step('queryMore', async () => {
    const first = await conn.request({ method: 'GET', url: `/services/data/v${VERSION}/query?q=${encodeURIComponent("SELECT Name FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name")}`, headers: { 'Sforce-Query-Options': 'batchSize=200' } });
    const more = await conn.queryMore(first.nextRecordsUrl.split('/').pop());
    return { firstDone: first.done, n: more.records.length, first: more.records[0].Name, next: Boolean(more.nextRecordsUrl) };
  });
  await step('count', () => Account.count({ Name: { $like: 'Bulk%' } }));
  /* No column alias: crmgate refuses aliases (they would let a field hide under another name). */
  await step('aggregate', () => conn.query('SELECT StageName, SUM(Amount) FROM Opportunity GROUP BY StageName ORDER BY StageName'));

  /* SOSL */
  await step('search', () => conn.search('FIND {Acme} IN ALL FIELDS RETURNING Account(Id, Name), Opportunity(Name ORDER BY Name)'));

  /* composite */
  await step('composite', () => conn.requestPost('/composite', {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `/services/data/v${VERSION}/sobjects/Account`, referenceId: 'refAccount', body: { Name: 'Composite Co' } },
      { method: 'POST', url: `/services/data/v${VERSION}/sobjects/Contact`, referenceId: 'refContact', body: { LastName: 'Comp', AccountId: '@{refAccount.id}' } },
      { method: 'GET', url: `/services/data/v${VERSION}/sobjects/Contact/@{refContact.id}?fields=LastName,AccountId`, referenceId: 'getContact' },
    ],
  }));
  await step('compositeRollback', () => conn.requestPost('/composite', {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `/services/data/v${VERSION}/sobjects/Account`, referenceId: 'ok', body: { Name: 'Never kept' } },
      /* A field the CRM rejects (not a read-only one: crmgate would deny the whole call) */
      { method: 'PATCH', url: `/services/data/v${VERSION}/sobjects/Account/${ACME}`, referenceId: 'bad', body: { Nope__c: 'x' } },
    ],
  }));

  /* deletes */
  await step('destroy', () => Contact.destroy(beta));
  await step('destroyMany', () => Account.destroy([sid('001', 2), sid('001', 3)]));
  await step('scanAll', async () => (await conn.query("SELECT Id, IsDeleted FROM Account WHERE Name LIKE 'Dup%' ORDER BY Name", { scanAll: true })).records);
  await step('limits', async () => (await conn.limits()).DailyApiRequests.Max);

  /* errors jsforce must surface with their errorCode */
  await step('errRequired', () => Contact.create({ FirstName: 'Nameless' }));
  await step('errReadOnly', () => Account.update({ Id: ACME, CreatedDate: '2020-01-01T00:00:00Z' }));
  await step('errUnknownField', () => Account.retrieve(ACME, { fields: ['Name', 'Nope__c'] }));
  await step('errDeleted', () => Contact.retrieve(beta));
  await step('errMalformedId', () => Account.retrieve(sid('003', 1)));
  await step('errQuery', () => conn.query('SELECT Id FROM Account WHERE'));
  await step('errType', () => conn.query('SELECT Id FROM Nope__c'));
  t.limitInfo = conn.limitInfo && conn.limitInfo.apiUsage ? { hasUsage: conn.limitInfo.apiUsage.used > 0, limit: conn.limitInfo.apiUsage.limit } : null;
  return t;
}

/* Semantic checks of one transcript; the same for the direct and the gate run. */
/* gated: the run went through crmgate, whose policy refuses some calls before the CRM sees them. */
function checkTranscript(t, gated = false) {
  const ok = (name) => {
    assert.ok(t[name], `step ${name} ran`);
    assert.ok('ok' in t[name], `${name} failed: ${JSON.stringify(t[name].error)}`);
    return t[name].ok;
  };
  const err = (name, code, messageRe) => {
    assert.ok(t[name] && t[name].error, `${name} should have failed, got ${JSON.stringify(t[name])}`);
    assert.equal(t[name].error.errorCode, code, `${name}: ${JSON.stringify(t[name].error)}`);
    if (messageRe) assert.match(t[name].error.message, messageRe);
  };
  const id18 = /^[a-zA-Z0-9]{18}$/;

  assert.ok(ok('describeGlobal').some(([n, p]) => n === 'Account' && p === '001'));
  assert.deepEqual(ok('describe'), {
    name: 'Account', keyPrefix: '001', Name: ['string', true, false], CreatedDate: ['datetime', false, false],
    Ext__c: [true, true], contacts: true,
  });

  const created = ok('create');
  assert.deepEqual(Object.keys(created), ['id', 'success', 'errors']);
  assert.match(created.id, id18);
  assert.ok(created.id.startsWith('001'));
  assert.deepEqual(ok('retrieve'), { type: 'Account', Id: created.id, Name: 'Jetsons Inc', Industry: 'Robotics', Phone: null, IsDeleted: false });
  assert.deepEqual(ok('retrieveFields'), {
    attributes: { type: 'Account', url: `/services/data/v${VERSION}/sobjects/Account/${created.id}` }, Name: 'Jetsons Inc', Industry: 'Robotics', Id: created.id,
  });
  assert.deepEqual(ok('update'), { id: created.id, success: true, errors: [] }, 'jsforce turns the 204 into a SaveResult');
  assert.deepEqual([ok('retrieveAfterUpdate').Industry, ok('retrieveAfterUpdate').Phone], ['Space', '555-0100']);

  const ins = ok('upsertInsert');
  assert.deepEqual([ins.success, ins.created, ins.errors], [true, true, []]);
  assert.deepEqual(ok('upsertUpdate'), { id: ins.id, success: true, errors: [], created: false });
  err('upsertMultiple', 'MULTIPLE_CHOICES');

  const many = ok('createMany');
  assert.equal(many.length, 3);
  assert.deepEqual([many[0].success, many[1].success, many[2].success], [true, true, false], 'per-record failures do not throw');
  assert.equal(many[2].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
  assert.deepEqual(ok('updateMany'), [{ id: many[0].id, success: true, errors: [] }, { id: many[1].id, success: true, errors: [] }]);
  assert.deepEqual(ok('retrieveMany'), [
    ['Contact', many[0].id, 'Alpha', 'CEO', created.id, 'Alpha'],
    ['Contact', many[1].id, 'Beta', 'CTO', created.id, 'Beta'],
    ['Contact', sid('003', 1), 'Seeded', null, ACME, 'Sam Seeded'],
  ]);
  const aon = ok('createAllOrNone');
  assert.deepEqual(aon.map((r) => [r.success, r.errors[0].statusCode]), [[false, 'ALL_OR_NONE_OPERATION_ROLLED_BACK'], [false, 'REQUIRED_FIELD_MISSING']]);

  const qp = ok('queryParent');
  assert.deepEqual([qp.totalSize, qp.done], [2, true]);
  assert.deepEqual(qp.records.map((r) => [r.LastName, r.Title, r.Account.Name, r.Account.Owner.Name, r.Account.attributes.type]),
    [['Alpha', 'CEO', 'Jetsons Inc', 'Crmgate Integration', 'Account'], ['Beta', 'CTO', 'Jetsons Inc', 'Crmgate Integration', 'Account']]);
  assert.deepEqual(ok('findBuilder').map((r) => [r.LastName, r.Account.Name]), [['Beta', 'Jetsons Inc'], ['Alpha', 'Jetsons Inc']]);
  assert.deepEqual(ok('findAllFields'), [['Acme launch', 50000, true, '2024-03-15', true]]);
  const sub = ok('subquery').records[0];
  assert.deepEqual(sub.Contacts.records.map((c) => c.LastName), ['Seeded']);
  assert.deepEqual(sub.Opportunities.records.map((o) => [o.Name, o.Amount]), [['Acme launch', 50000]]);
  assert.deepEqual(ok('autoFetch'), { totalSize: BULK, done: true, n: BULK, first: 'Bulk 000', last: `Bulk ${BULK - 1}`, distinct: BULK });
  assert.deepEqual(ok('queryMore'), { firstDone: false, n: 200, first: 'Bulk 200', next: true });
  assert.equal(ok('count'), BULK);
  assert.deepEqual(ok('aggregate').records.map((r) => [r.StageName, r.expr0]), [['Closed Won', 50000], ['Prospecting', 1200]]);

  const found = ok('search').searchRecords.map((r) => [r.attributes.type, r.Name]);
  assert.deepEqual(found, [['Account', 'Acme Rockets'], ['Opportunity', 'Acme launch'], ['Opportunity', 'Acme refit']]);

  const comp = ok('composite').compositeResponse;
  assert.deepEqual(comp.map((c) => [c.referenceId, c.httpStatusCode]), [['refAccount', 201], ['refContact', 201], ['getContact', 200]]);
  assert.equal(comp[2].body.AccountId, comp[0].body.id);
  const rb = ok('compositeRollback').compositeResponse;
  assert.deepEqual(rb.map((c) => [c.httpStatusCode, c.body[0].errorCode]), [[400, 'PROCESSING_HALTED'], [400, 'INVALID_FIELD']]);

  assert.deepEqual(ok('destroy'), { id: many[1].id, success: true, errors: [] });
  assert.deepEqual(ok('destroyMany'), [{ id: sid('001', 2), success: true, errors: [] }, { id: sid('001', 3), success: true, errors: [] }]);
  assert.deepEqual(ok('scanAll').map((r) => [r.Id, r.IsDeleted]), [[sid('001', 2), true], [sid('001', 3), true]]);
  assert.equal(ok('limits'), 15000);

  err('errRequired', 'REQUIRED_FIELD_MISSING', /Required fields are missing: \[LastName\]/);
  if (gated) {
    /* Read-only system fields can never be written: crmgate denies before Salesforce sees it. */
    err('errReadOnly', 'INSUFFICIENT_ACCESS_OR_READONLY', /read-only system field/);
    assert.match(t.errReadOnly.error.message, /Account\.CreatedDate/);
  } else {
    err('errReadOnly', 'INVALID_FIELD_FOR_INSERT_UPDATE', /Unable to create\/update fields: CreatedDate/);
  }
  err('errUnknownField', 'INVALID_FIELD', /No such column 'Nope__c'/);
  err('errDeleted', 'ENTITY_IS_DELETED');
  if (gated) {
    /* An id whose key prefix is another object's: crmgate cannot tell what Salesforce would
     * read (an external-id lookup or an error), so it denies. */
    err('errMalformedId', 'INSUFFICIENT_ACCESS_OR_READONLY', /is not a Account id \(key prefix of Contact\)/);
  } else {
    err('errMalformedId', 'MALFORMED_ID');
  }
  err('errQuery', 'MALFORMED_QUERY', gated ? /crmgate denied this call/ : undefined);
  err('errType', 'INVALID_TYPE');
  assert.deepEqual(t.limitInfo, { hasUsage: true, limit: 15000 }, 'jsforce parsed Sforce-Limit-Info');
}

/* The fake's final state after the scenario, checked record by record. */
function checkState(st) {
  const sfst = st.salesforce;
  const accounts = sfst.objects.Account.filter((a) => !/^Bulk /.test(a.Name));
  const byName = Object.fromEntries(accounts.map((a) => [a.Name, a]));
  assert.deepEqual(Object.keys(byName).sort(), ['Acme Rockets', 'Composite Co', 'Ext One (renamed)', 'Jetsons Inc']);
  assert.equal(sfst.objects.Account.length, 4 + BULK);
  assert.equal(byName['Jetsons Inc'].Industry, 'Space');
  assert.equal(byName['Jetsons Inc'].Phone, '555-0100');
  assert.equal(byName['Ext One (renamed)'].Ext__c, 'X-1');
  assert.equal(byName['Acme Rockets'].CreatedDate, sfst.objects.Account.find((a) => a.Id === ACME).CreatedDate);
  assert.ok(byName['Jetsons Inc'].LastModifiedDate >= byName['Jetsons Inc'].CreatedDate);
  const contacts = sfst.objects.Contact.map((c) => [c.LastName, c.Title, c.AccountId === byName['Jetsons Inc'].Id]).sort();
  assert.deepEqual(contacts, [['Alpha', 'CEO', true], ['Comp', null, false], ['Seeded', null, false]]);
  assert.deepEqual(sfst.deleted.Contact.map((c) => [c.LastName, c.IsDeleted]), [['Beta', true]]);
  assert.deepEqual(sfst.deleted.Account.map((a) => a.Name).sort(), ['Dup A', 'Dup B']);
  for (const a of accounts) for (const f of ['CreatedDate', 'LastModifiedDate', 'SystemModstamp', 'CreatedById', 'LastModifiedById']) assert.ok(a[f], `${a.Name}.${f}`);
}

/*
 * Timestamps, API-usage counters and generated record ids legitimately differ between runs.
 * Ids are replaced by their order of first appearance, so the same id must still appear in
 * the same places on both sides.
 */
function normalise(x) {
  const ids = new Map();
  const idFor = (id) => { if (!ids.has(id)) ids.set(id, `<id${ids.size}>`); return ids.get(id); };
  return JSON.parse(JSON.stringify(x), (k, v) => {
    if (k === 'Remaining' || k === 'apiUsage') return '<varies>';
    if (typeof v !== 'string') return v;
    if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d{4})$/.test(v)) return '<ts>';
    if (/^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT$/.test(v)) return '<http-date>';
    return v.replace(/\b([a-zA-Z0-9]{3}Hs0[a-zA-Z0-9]{12})\b/g, (m) => idFor(m));
  });
}

async function runOn(instanceUrl) {
  await fake.reset();
  await fake.seed(SEED);
  await fake.clearRequests();
  const t = await scenario(connect(instanceUrl));
  return { t, state: { salesforce: (await fake.state()).salesforce }, log: await fake.requests() };
}

let direct; /* transcript of the direct run, shared with the gate comparison */

test('jsforce against the fake directly: every call behaves as Salesforce does', async () => {
  direct = await runOn(fake.url);
  checkTranscript(direct.t);
  checkState(direct.state);
  /* jsforce asked for gzip on every call and the fake compressed every non-empty answer. */
  const withBody = direct.log.filter((r) => r.response && r.response.status !== 204 && r.response.status !== 304);
  assert.ok(withBody.length > 30, `${withBody.length} calls with a body`);
  for (const r of withBody) {
    assert.match(r.headers['accept-encoding'] || '', /gzip/, `${r.method} ${r.path}`);
    assert.equal(r.response.gzip, true, `${r.method} ${r.path} not gzipped`);
  }
});

test('jsforce through crmgate sees exactly what it sees directly', { skip: GATE }, async () => {
  if (!direct) direct = await runOn(fake.url);
  const via = await runOn(gateBase());
  checkTranscript(via.t, true);
  checkState(via.state);
  /* Identical, but for the calls crmgate itself refuses (checked above), which never reach
   * the CRM: the read-only write and the query crmgate cannot parse. */
  const strip = ({ errReadOnly, errQuery, errMalformedId, ...rest }) => rest;
  assert.deepEqual(normalise(strip(via.t)), normalise(strip(direct.t)));
  assert.deepEqual(normalise(via.state), normalise(direct.state));
  const readOnlyPatch = (r) => r.method === 'PATCH' && r.path.endsWith(`/sobjects/Account/${ACME}`) && /CreatedDate/.test(r.body);
  const badQuery = (r) => r.path.endsWith('/query') && /WHERE$/.test(decodeURIComponent((r.query || '').replace(/\+/g, ' ')));
  assert.ok(direct.log.some(readOnlyPatch) && direct.log.some(badQuery), 'the direct run sent both');
  assert.ok(!via.log.some(readOnlyPatch), 'the denied write never reached the CRM');
  assert.ok(!via.log.some(badQuery), 'the refused query never reached the CRM');
});

test('through crmgate: Salesforce error arrays reach jsforce intact (errorCode, message, fields)', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed(SEED);
  const conn = connect(gateBase());
  await assert.rejects(conn.sobject('Contact').create({ FirstName: 'Nameless' }), (e) => {
    assert.equal(e.errorCode, 'REQUIRED_FIELD_MISSING');
    assert.equal(e.name, 'REQUIRED_FIELD_MISSING');
    assert.equal(e.message, 'Required fields are missing: [LastName]');
    assert.deepEqual(e.data, { message: 'Required fields are missing: [LastName]', errorCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName'] });
    return true;
  });
  await assert.rejects(conn.sobject('Account').update({ Id: ACME, Nope__c: 'x' }), (e) => {
    assert.equal(e.errorCode, 'INVALID_FIELD');
    assert.match(e.message, /Nope__c/);
    return true;
  });
  await assert.rejects(conn.query("SELECT Id, Foo FROM Account"), (e) => {
    assert.equal(e.errorCode, 'INVALID_FIELD');
    assert.match(e.message, /ERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Account'/);
    return true;
  });
  await assert.rejects(conn.sobject('Account').upsert({ Name: 'x', Ext__c: 'DUP' }, 'Ext__c'), (e) => e.errorCode === 'MULTIPLE_CHOICES');
  const st = await fake.state();
  assert.equal(st.salesforce.objects.Contact.length, 1, 'the rejected create wrote nothing');
  assert.equal(st.salesforce.objects.Account.find((a) => a.Id === ACME).Name, 'Acme Rockets');
});

test('through crmgate: conditional headers pass both ways (Last-Modified, ETag, 412, 304)', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed({ salesforce: { objects: { Account: [{ Id: ACME, Name: 'Old', LastModifiedDate: '2024-05-14T10:03:11.000+0000' }] } } });
  const url = `${gateBase()}/services/data/v${VERSION}/sobjects/Account/${ACME}`;
  const g = await raw('GET', `${url}?fields=Name`);
  assert.equal(g.status, 200);
  assert.equal(g.headers['last-modified'], 'Tue, 14 May 2024 10:03:11 GMT');
  assert.ok(g.headers.etag);
  const nm = await raw('GET', url, null, { 'if-none-match': g.headers.etag });
  assert.equal(nm.status, 304);
  const stale = await raw('PATCH', url, { Name: 'Lost' }, { 'if-unmodified-since': 'Mon, 13 May 2024 00:00:00 GMT' });
  assert.equal(stale.status, 412, stale.text);
  assert.ok(JSON.parse(stale.text)[0].errorCode);
  const conn = connect(gateBase());
  const r = await conn.sobject('Account').update({ Id: ACME, Name: 'New' }, { headers: { 'If-Unmodified-Since': g.headers['last-modified'] } });
  assert.deepEqual(r, { id: ACME, success: true, errors: [] });
  assert.equal((await fake.state()).salesforce.objects.Account[0].Name, 'New');
});

test('through crmgate: gzip from the fake reaches jsforce and raw clients intact', { skip: GATE }, async () => {
  await fake.reset();
  await fake.seed(SEED);
  await fake.clearRequests();
  const conn = connect(gateBase());
  const r = await conn.query("SELECT Name FROM Account WHERE Name LIKE 'Bulk%' ORDER BY Name");
  assert.equal(r.records.length, BULK, 'a large gzipped page decodes whole');
  const resp = await raw('GET', `${gateBase()}/services/data/v${VERSION}/sobjects/Account/${ACME}?fields=Name`, null, { 'accept-encoding': 'gzip' });
  assert.equal(resp.status, 200);
  assert.equal(JSON.parse(resp.text).Name, 'Acme Rockets');
  const log = (await fake.requests()).filter((x) => x.path.startsWith('/services/data/'));
  assert.ok(log.length >= 2);
  for (const x of log) {
    assert.equal(x.response.gzip, /gzip/.test(x.headers['accept-encoding'] || ''), `${x.path} ${x.headers['accept-encoding']}`);
  }
});

test('through crmgate: an OAuth refresh by a pass-through caller is refused, and nothing reaches the token endpoint', { skip: GATE }, async () => {
  /*
   * Callers are identified by the fingerprint of the token they send. A refresh call carries no
   * token, and the token it would mint is unregistered, so crmgate refuses it in Salesforce's
   * shape (403, never 401, which would make jsforce refresh in a loop). Tokens held and
   * refreshed by crmgate itself come with credential custody.
   */
  await fake.reset();
  await fake.seed(SEED);
  await fake.revokeToken(TOKEN);
  const conn = new jsforce.Connection({
    instanceUrl: gateBase(), accessToken: TOKEN, refreshToken: 'RT-test', version: VERSION,
    oauth2: { clientId: 'cid', clientSecret: 'csecret', loginUrl: gateBase() },
  });
  await assert.rejects(conn.sobject('Account').retrieve(ACME, { fields: ['Name'] }), (e) => {
    /* jsforce reads the OAuth error shape crmgate answers token calls with */
    assert.match(e.message, /Unable to refresh session due to: crmgate denied this call \(rule builtin:unknown-caller\)/);
    assert.match(e.message, /no Authorization header/);
    return true;
  });
  const log = await fake.requests();
  assert.ok(!log.some((x) => x.path === '/services/oauth2/token'), 'no refresh reached the fake');
});

/* A raw HTTP call with the test token; gzip bodies are inflated. */
function raw(method, url, body, headers = {}) {
  const payload = body ? Buffer.from(JSON.stringify(body)) : null;
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        let buf = Buffer.concat(chunks);
        if (res.headers['content-encoding'] === 'gzip') buf = zlib.gunzipSync(buf);
        resolve({ status: res.statusCode, headers: res.headers, text: buf.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload || undefined);
  });
}
