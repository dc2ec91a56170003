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

/* A raw request through crmgate (no SDK normalises it): body an object, a string or a Buffer. */
const hs = (method, path, opts = {}) => harness.rawRequest(stack.gate.port, method, `/hubspot${path}`, { token: HS_TOKEN, ...opts });
const sf = (method, path, opts = {}) => harness.rawRequest(stack.gate.port, method, `/salesforce${path}`, { token: SF_TOKEN, ...opts });
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

/* ======================= attempts already refused (pinned) ======================= */

/*
 * [name, method, path (after /hubspot or /salesforce), {body, headers}, message regexp]. Every
 * row must be refused in the CRM's own shape with nothing sent upstream. Salesforce rows whose
 * path starts with '?' are SOQL queries (the rest of the row is the query).
 */
const HS_REFUSED = [
  ['read an unreadable property', 'GET', '/crm/v3/objects/contacts/101?properties=email,phone', {}, /phone/],
  ['propertiesWithHistory of an unreadable property', 'GET', '/crm/v3/objects/contacts/101?properties=email&propertiesWithHistory=phone', {}, /phone/],
  ['a query parameter in another case', 'GET', '/crm/v3/objects/contacts/101?Properties=phone', {}, /differs in case/],
  ['idProperty twice', 'GET', '/crm/v3/objects/contacts/ada%40acme.test?idProperty=email&idProperty=phone', {}, /given twice/],
  ['lookup by an unreadable idProperty (an oracle)', 'PATCH', '/crm/v3/objects/contacts/%2B1%20555%200101?idProperty=phone', { body: { properties: { lifecyclestage: 'customer' } } }, /phone/],
  ['batch read by an unreadable idProperty', 'POST', '/crm/v3/objects/contacts/batch/read', { body: { inputs: [{ id: '+1 555 0101' }], idProperty: 'phone', properties: ['email'] } }, /phone/],
  ['search filter on an unreadable property', 'POST', '/crm/v3/objects/contacts/search', { body: { filterGroups: [{ filters: [{ propertyName: 'phone', operator: 'HAS_PROPERTY' }] }], properties: ['email'] } }, /phone/],
  ['search sort on an unreadable property', 'POST', '/crm/v3/objects/contacts/search', { body: { sorts: ['-phone'], properties: ['email'] } }, /phone/],
  ['search filter on associations of an unlisted type', 'POST', '/crm/v3/objects/contacts/search', { body: { filterGroups: [{ filters: [{ propertyName: 'associations.ticket', operator: 'EQ', value: '401' }] }], properties: ['email'] } }, /associations\.tickets/],
  ['free-text search', 'POST', '/crm/v3/objects/contacts/search', { body: { query: '555', properties: ['email'] } }, /\*query/],
  ['search key the endpoint does not define', 'POST', '/crm/v3/objects/contacts/search', { body: { filterGroups: [{ filters: [{ property: 'phone', operator: 'HAS_PROPERTY' }] }] } }, /unexpected key/],
  ['associations of an unlisted type on a read', 'GET', '/crm/v3/objects/contacts/101?associations=0-5', {}, /tickets/],
  ['v4 association batch read to an unlisted type', 'POST', '/crm/v4/associations/contacts/tickets/batch/read', { body: { inputs: [{ id: '101' }] } }, /tickets/],
  ['an unlisted object by its type id, singular', 'GET', '/crm/v3/objects/ticket/401', {}, /tickets/],
  ['an unlisted object, date-based API', 'GET', '/crm/objects/2026-03/0-5/401', {}, /tickets/],
  ['write an unwritable property', 'PATCH', '/crm/v3/objects/contacts/101', { body: { properties: { phone: '1' } } }, /phone/],
  ['write through a \\u-escaped key', 'PATCH', '/crm/v3/objects/contacts/101', { body: '{"properties":{"\\u0070hone":"1"}}' }, /phone/],
  ['a \\u-escaped "properties" key', 'PATCH', '/crm/v3/objects/contacts/101', { body: '{"\\u0070roperties":{"phone":"1"}}' }, /phone/],
  ['duplicate keys', 'PATCH', '/crm/v3/objects/contacts/101', { body: '{"properties":{"lifecyclestage":"lead","lifecyclestage":"customer"}}' }, /repeats a key/],
  ['duplicate keys, one escaped', 'PATCH', '/crm/v3/objects/contacts/101', { body: '{"properties":{"lifecyclestage":"lead","lifecycl\\u0065stage":"customer"}}' }, /repeats a key/],
  ['a non-scalar value', 'PATCH', '/crm/v3/objects/contacts/101', { body: { properties: { lifecyclestage: { value: 'x' } } } }, /not a scalar/],
  ['a body that is not application/json', 'PATCH', '/crm/v3/objects/contacts/101', { body: '{"properties":{"lifecyclestage":"lead"}}', headers: { 'content-type': 'text/plain' } }, /not application\/json/],
  ['a body on GET', 'GET', '/crm/v3/objects/contacts/101', { body: { properties: { lifecyclestage: 'lead' } } }, /unexpected request body/],
  ['a body on DELETE', 'DELETE', '/crm/v3/objects/deals/301', { body: {} }, /unexpected request body/],
  ['X-HTTP-Method-Override', 'GET', '/crm/v3/objects/deals/301', { headers: { 'x-http-method-override': 'DELETE' } }, /X-HTTP-Method-Override/],
  ['OPTIONS', 'OPTIONS', '/crm/v3/objects/contacts/101', {}, /OPTIONS/],
  ['batch mixing an allowed and a forbidden record', 'POST', '/crm/v3/objects/contacts/batch/update', { body: { inputs: [{ id: '101', properties: { lifecyclestage: 'customer' } }, { id: '102', properties: { phone: '1' } }] } }, /phone/],
  ['batch upsert writes its idProperty', 'POST', '/crm/v3/objects/contacts/batch/upsert', { body: { inputs: [{ id: 'new@acme.test', idProperty: 'email', properties: { lifecyclestage: 'lead' } }] } }, /email/],
  ['create through the 0-3 spelling with an unwritable field', 'POST', '/crm/v3/objects/0-3', { body: { properties: { dealstage: 'x', amount: '5' } } }, /amount/],
  ['create without the create action', 'POST', '/crm/v3/objects/contacts', { body: { properties: { lifecyclestage: 'lead' } } }, /create/],
  ['merge without the action', 'POST', '/crm/v3/objects/contacts/merge', { body: { primaryObjectId: '101', objectIdToMerge: '102' } }, /merge/],
  ['gdpr-delete without the action', 'POST', '/crm/v3/objects/contacts/gdpr-delete', { body: { objectId: 'ada@acme.test', idProperty: 'email' } }, /gdpr_delete/],
  ['associate to an unlisted type', 'PUT', '/crm/v4/objects/deals/301/associations/default/tickets/401', {}, /tickets/],
  ['a defined type id of another pair', 'PUT', '/crm/v4/objects/deals/301/associations/companies/201', { body: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 27 }] }, /does not start at deals|does not connect/],
  ['legacy v1 profile read', 'GET', '/contacts/v1/contact/vid/101/profile', {}, /legacy v1 contact profiles/],
  ['legacy v1 write of an unwritable property', 'POST', '/contacts/v1/contact/vid/101/profile', { body: { properties: [{ property: 'phone', value: '1' }] } }, /phone/],
  ['legacy v1 entry with another key', 'POST', '/contacts/v1/contact/vid/101/profile', { body: { properties: [{ name: 'phone', value: '1' }] } }, /unexpected key/],
  ['legacy batch by email writes the email', 'POST', '/contacts/v1/contact/batch', { body: [{ email: 'z@acme.test', properties: [{ property: 'lifecyclestage', value: 'lead' }] }] }, /email/],
  ['the properties write API', 'POST', '/crm/v3/properties/contacts', { body: { name: 'x', label: 'x', type: 'string', fieldType: 'text', groupName: 'contactinformation' } }, /schema|not recognise/],
  ['an encoded slash', 'GET', '/crm/v3/objects/contacts%2F101', {}, /encoded slash/],
  ['a Tomcat dot-semicolon segment', 'GET', '/crm/v3/objects/contacts/..;/associations/tickets', {}, /';'/],
  ['a query parameter hidden behind a semicolon', 'GET', '/crm/v3/objects/contacts/101?limit=1;idProperty=phone', {}, /';'/],
];

const SF_REFUSED = [
  ['read an unreadable field', 'GET', `${DATA}/sobjects/Contact/${CON}?fields=LastName,Phone`, {}, /Phone/],
  ['lookup by an unreadable external id', 'GET', `${DATA}/sobjects/Contact/Phone/555-0101`, {}, /Phone/],
  ['an id of another object', 'GET', `${DATA}/sobjects/Opportunity/${CON}`, {}, /not a Opportunity id/],
  ['a relationship hop to an unreadable lookup', 'GET', `${DATA}/sobjects/Opportunity/${OPP}/Owner`, {}, /OwnerId|not recognise|User/],
  ['an unlisted object', 'GET', `${DATA}/sobjects/Lead/00QByp000000001`, {}, /Lead/],
  ['SOQL: WHERE on an unreadable field', '?', "SELECT Name FROM Account WHERE Phone = '555-0100'", {}, /Phone/],
  ['SOQL: ORDER BY an unreadable field', '?', 'SELECT Name FROM Account ORDER BY Phone', {}, /Phone/],
  ['SOQL: GROUP BY / HAVING', '?', "SELECT Name FROM Account GROUP BY Name HAVING MAX(Phone) > '1'", {}, /Phone/],
  ['SOQL: aggregate of an unreadable field', '?', 'SELECT COUNT_DISTINCT(Phone) FROM Account', {}, /Phone/],
  ['SOQL: relationship path to an unreadable field', '?', 'SELECT LastName, Account.Phone FROM Contact', {}, /Phone/],
  ['SOQL: two hops (Account.Owner.Email)', '?', 'SELECT LastName FROM Contact WHERE Account.Owner.Email = \'x\'', {}, /OwnerId|User/],
  ['SOQL: child subquery filter', '?', "SELECT Name, (SELECT LastName FROM Contacts WHERE Phone = '1') FROM Account", {}, /Phone/],
  ['SOQL: semi-join on an unreadable field', '?', "SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE Phone = '1')", {}, /Phone/],
  ['SOQL: an escaped quote does not hide a clause', '?', "SELECT Name FROM Account WHERE Name = 'a\\\\' AND Phone = '1'", {}, /Phone/],
  ['SOQL: FIELDS()', '?', 'SELECT FIELDS(ALL) FROM Account LIMIT 1', { status: 400 }, /FIELDS/],
  ['SOQL: TYPEOF', '?', 'SELECT TYPEOF What WHEN Account THEN Phone END FROM Task', { status: 400 }, /TYPEOF/],
  ['SOQL: an alias', '?', 'SELECT MAX(Name) m FROM Account', { status: 400 }, /alias/],
  ['SOQL: a comment', '?', "SELECT Name FROM Account WHERE Name = 'a' --", { status: 400 }, /comment/],
  ['SOSL: free text', 'GET', `${DATA}/search?q=${encodeURIComponent('FIND {Acme} RETURNING Account(Name)')}`, {}, /\*query/],
  ['SOSL without RETURNING', 'GET', `${DATA}/search?q=${encodeURIComponent('FIND {Acme}')}`, {}, /RETURNING/],
  ['parameterizedSearch over every object', 'GET', `${DATA}/parameterizedSearch?q=Acme`, {}, /every object/],
  ['queryMore with a locator crmgate never handed out', 'GET', `${DATA}/query/01gByp0000000001AA-2000`, {}, /locator/],
  ['update an unwritable field', 'PATCH', `${DATA}/sobjects/Opportunity/${OPP}`, { body: { StageName: 'Closed Won', Amount: 1 } }, /Amount/],
  ['a field twice, in two cases', 'PATCH', `${DATA}/sobjects/Opportunity/${OPP}`, { body: { StageName: 'a', stagename: 'b' } }, /given twice/],
  ['duplicate keys', 'PATCH', `${DATA}/sobjects/Opportunity/${OPP}`, { body: '{"StageName":"a","StageName":"b"}' }, /not valid JSON/],
  ['a body that is not JSON', 'PATCH', `${DATA}/sobjects/Opportunity/${OPP}`, { body: '<Opportunity><Amount>3</Amount></Opportunity>', headers: { 'content-type': 'application/xml' } }, /not classified/],
  ['_HttpMethod on a GET', 'GET', `${DATA}/sobjects/Opportunity/${OPP}?_HttpMethod=DELETE`, {}, /_HttpMethod/],
  ['_HttpMethod=PATCH with an unwritable field', 'POST', `${DATA}/sobjects/Opportunity/${OPP}?_HttpMethod=PATCH`, { body: { Amount: 1 } }, /Amount/],
  ['an override parameter', 'POST', `${DATA}/sobjects/Opportunity/${OPP}?_method=DELETE`, {}, /override/],
  ['X-HTTP-Method-Override that differs', 'GET', `${DATA}/sobjects/Opportunity/${OPP}`, { headers: { 'x-http-method-override': 'DELETE' } }, /differs/],
  ['OPTIONS', 'OPTIONS', `${DATA}/sobjects/Opportunity/${OPP}`, {}, /OPTIONS/],
  ['a body on DELETE', 'DELETE', `${DATA}/sobjects/Opportunity/${OPP}`, { body: {} }, /unexpected body/],
  ['delete without the action', 'DELETE', `${DATA}/sobjects/Opportunity/${OPP}`, {}, /delete/],
  ['create via POST /Id with an unwritable field', 'POST', `${DATA}/sobjects/Account/Id`, { body: { Name: 'x', Phone: '1' } }, /Phone/],
  ['collections mixing an allowed and a forbidden record', 'PATCH', `${DATA}/composite/sobjects`, { body: { allOrNone: false, records: [{ attributes: { type: 'Opportunity' }, id: OPP, StageName: 'x' }, { attributes: { type: 'Contact' }, id: CON, Phone: '1' }] } }, /Phone/],
  ['collections: attributes.type that the id contradicts', 'PATCH', `${DATA}/composite/sobjects`, { body: { records: [{ attributes: { type: 'Opportunity' }, id: CON, StageName: 'x' }] } }, /not a Opportunity id/],
  ['collections upsert of another type', 'PATCH', `${DATA}/composite/sobjects/Account/Ext__c`, { body: { records: [{ attributes: { type: 'Contact' }, Ext__c: 'A-1', LastName: 'x' }] } }, /not a Account/],
  ['composite with allOrNone and one forbidden subrequest', 'POST', `${DATA}/composite`, { body: { allOrNone: true, compositeRequest: [{ method: 'PATCH', url: `${DATA}/sobjects/Opportunity/${OPP}`, referenceId: 'a', body: { StageName: 'x' } }, { method: 'PATCH', url: `${DATA}/sobjects/Contact/${CON}`, referenceId: 'b', body: { Phone: '1' } }] } }, /Phone/],
  ['composite reference to a field that is not an id', 'POST', `${DATA}/composite`, { body: { compositeRequest: [{ method: 'GET', url: `${DATA}/sobjects/Contact/${CON}?fields=LastName`, referenceId: 'a' }, { method: 'PATCH', url: `${DATA}/sobjects/Opportunity/${OPP}`, referenceId: 'b', body: { StageName: '@{a.Phone}' } }] } }, /reference/],
  ['an encoded composite reference', 'POST', `${DATA}/composite`, { body: { compositeRequest: [{ method: 'GET', url: `${DATA}/sobjects/Contact/%40%7Ba.Phone%7D`, referenceId: 'b' }] } }, /encoded composite reference/],
  ['composite subrequest asking for XML', 'POST', `${DATA}/composite`, { body: { compositeRequest: [{ method: 'GET', url: `${DATA}/sobjects/Account/${ACC}?fields=Name`, referenceId: 'a', httpHeaders: { Accept: 'application/xml' } }] } }, /Accept/i],
  ['composite/batch subrequest with an unwritable field', 'POST', `${DATA}/composite/batch`, { body: { batchRequests: [{ method: 'PATCH', url: `v${V}/sobjects/Contact/${CON}`, richInput: { Phone: '1' } }] } }, /Phone/],
  ['tree creating an object without the create action', 'POST', `${DATA}/composite/tree/Account`, { body: { records: [{ attributes: { type: 'Account', referenceId: 'r1' }, Name: 'T', Contacts: { records: [{ attributes: { type: 'Contact', referenceId: 'r2' }, LastName: 'L' }] } }] } }, /create on Contact/],
  ['Bulk API', 'POST', `${DATA}/jobs/ingest`, { body: { object: 'Account', operation: 'insert' } }, /not classified/],
  ['Apex REST', 'POST', '/services/apexrest/anything', { body: {} }, /not classified/],
  ['UI API', 'GET', `${DATA}/ui-api/records/${ACC}`, {}, /not classified/],
  ['list views', 'GET', `${DATA}/sobjects/Account/listviews`, {}, /not classified/],
  ['a path parameter', 'GET', `${DATA}/sobjects/Account;x=1/${ACC}`, {}, /0x3b/],
];

test('refused: HubSpot bypass attempts (table)', { skip: GATE }, async () => {
  for (const [name, method, path, opts, re] of HS_REFUSED) {
    await stack.fake.clearRequests();
    const r = await hs(method, path, opts);
    if (method === 'HEAD') continue;
    await expectRefused('hubspot', r, `hubspot: ${name}`, { re });
  }
  /* HEAD is refused too (no body to look at) */
  await stack.fake.clearRequests();
  const h = await hs('HEAD', '/crm/v3/objects/contacts/101');
  assert.equal(h.status, 403);
  assert.deepEqual(await stack.fake.requests(), []);
});

test('refused: Salesforce bypass attempts (table)', { skip: GATE }, async () => {
  for (const [name, method, path, opts, re] of SF_REFUSED) {
    await stack.fake.clearRequests();
    const r = method === '?' ? await sf('GET', soql(path)) : await sf(method, path, opts);
    await expectRefused('salesforce', r, `salesforce: ${name}`, { re, status: opts.status || 403 });
  }
});

test('refused: a denied write is audited with the fields it tried, and never 401/429/5xx', { skip: GATE }, async () => {
  const a = await hs('PATCH', '/crm/v3/objects/contacts/101', { body: { properties: { lifecyclestage: 'customer', phone: '1' } } });
  await expectRefused('hubspot', a, 'hubspot denied write', { re: /phone/ });
  const b = await sf('PATCH', `${DATA}/sobjects/Opportunity/${OPP}`, { body: { StageName: 'x', Amount: 1 } });
  await expectRefused('salesforce', b, 'salesforce denied write', { re: /Amount/ });
  const recs = newRecords();
  assert.deepEqual(recs.map((x) => [x.crm, x.verb, x.outcome, x.fields.map((f) => f.name).sort().join(',')]), [
    ['hubspot', 'update', 'denied', 'lifecyclestage,phone'],
    ['salesforce', 'update', 'denied', 'Amount,StageName'],
  ]);
});

test('refused or filtered: answers in shapes and types an agent might hope the filter skips', { skip: GATE }, async () => {
  const now = '2030-01-01T00:00:00.000Z';
  const contact = { id: '101', createdAt: now, updatedAt: now, archived: false, properties: { email: 'ada@acme.test', phone: '+1 555 0101' } };
  /* Content-Type spellings of JSON: filtered all the same */
  for (const ct of ['application/json;charset=UTF-8', 'Application/JSON', 'application/vnd.hubspot+json; charset=utf-8', 'text/json']) {
    await stack.fake.fault({ match: { method: 'GET', path: '^/crm/v3/objects/contacts/101$' }, action: 'status', status: 200, body: contact, headers: { 'Content-Type': ct } });
    const r = await hs('GET', '/crm/v3/objects/contacts/101?properties=email');
    assert.equal(r.status, 200, `${ct}: ${r.text}`);
    assert.deepEqual(r.json.properties, { email: 'ada@acme.test' }, `${ct}: filtered`);
  }
  /* no Content-Type, or one that is not JSON: refused, never relayed */
  for (const headers of [{ 'Content-Type': '' }, { 'Content-Type': 'text/plain' }]) {
    await stack.fake.fault({ match: { method: 'GET', path: '^/crm/v3/objects/contacts/101$' }, action: 'status', status: 200, body: JSON.stringify(contact), headers });
    const r = await hs('GET', '/crm/v3/objects/contacts/101?properties=email');
    assert.notEqual(r.status, 200, r.text);
    assert.ok(!r.text.includes('+1 555 0101'), `${JSON.stringify(headers)}: ${r.text}`);
  }
  /* a 207 batch answer: its records are filtered, its errors kept */
  await stack.fake.fault({
    match: { method: 'POST', path: '/batch/read$' }, action: 'status', status: 207,
    body: { status: 'COMPLETE', results: [contact], numErrors: 1, errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'not found', context: { ids: ['999'] } }], startedAt: now, completedAt: now },
  });
  const b = await hs('POST', '/crm/v3/objects/contacts/batch/read', { body: { inputs: [{ id: '101' }, { id: '999' }], properties: ['email'] } });
  assert.equal(b.status, 207, b.text);
  assert.deepEqual(b.json.results[0].properties, { email: 'ada@acme.test' });
  assert.deepEqual(b.json.errors[0].context, { ids: ['999'] });
  /* Salesforce DUPLICATES_DETECTED (an error answer) lists matching records: filtered by type */
  await stack.fake.fault({
    match: { method: 'POST', path: `^${DATA}/sobjects/Account$` }, action: 'status', status: 400,
    body: [{ message: 'Use one of these records?', errorCode: 'DUPLICATES_DETECTED', fields: [], duplicateResult: { allowSave: false, duplicateRule: 'Standard_Account_Duplicate_Rule', matchResults: [{ entityType: 'Account', matchRecords: [
      { record: { attributes: { type: 'Account', url: `${DATA}/sobjects/Account/${ACC}` }, Id: ACC, Name: 'Acme', Phone: '555-0100', Owner: { attributes: { type: 'User' }, Email: 'boss@acme.test' } } },
      { record: { attributes: { type: 'Lead' }, Id: '00QByp000000001', Company: 'Lead Co' } },
    ] }] } }],
  });
  const d = await sf('POST', `${DATA}/sobjects/Account`, { body: { Name: 'Acme' } });
  assert.equal(d.status, 400, d.text);
  const recs = d.json[0].duplicateResult.matchResults[0].matchRecords;
  assert.deepEqual(recs[0].record, { attributes: { type: 'Account', url: `${DATA}/sobjects/Account/${ACC}` }, Id: ACC, Name: 'Acme', Owner: null });
  assert.ok(!d.text.includes('555-0100') && !d.text.includes('boss@') && !d.text.includes('Lead Co'), d.text);
});

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
    ['/deals/v1/deal/paged?includeAssociations=true&properties=amount', { deals: [{ portalId: 1, dealId: 301, isDeleted: false, properties: { dealname: prop('Renewal'), amount: prop('1200.75') } }], hasMore: false, offset: 301 }],
    ['/companies/v2/companies/paged?properties=phone', { companies: [{ portalId: 1, companyId: 201, isDeleted: false, properties: { name: prop('Acme'), phone: prop('tel:555-0199') } }], 'has-more': false, offset: 201 }],
  ];
  for (const [path, body] of pages) {
    await stack.fake.fault({ match: { method: 'GET', path: `^${path.split('?')[0]}$` }, action: 'status', status: 200, body });
    const r = await hs('GET', path);
    await expectRefused('hubspot', r, path, { re: /legacy record id "paged" is not numeric/ });
    assert.ok(!r.text.includes('1200.75') && !r.text.includes('tel:555-0199'), r.text);
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
    assert.ok(!/555-0101|555 0101/.test(p.text), `${path}: no unfiltered value: ${p.text}`);
    await stack.fake.clearFaults();
  }
});

test('bug: a method override spelt with underscores (X_HTTP_Method_Override) is refused like the dashed ones', { skip: GATE }, async () => {
  /* Some front ends read '_' as '-' in header names (crmgate already strips X_Crmgate_* for
   * that reason). The classifiers judge X-HTTP-Method-Override as spelt; the underscore
   * spelling went upstream unseen, so a GET crmgate allowed as a read could run as a DELETE. */
  for (const name of ['X_HTTP_Method_Override', 'x_http_method', 'X_Method_Override']) {
    for (const [crm, call, path] of [['hubspot', hs, '/crm/v3/objects/deals/301'], ['salesforce', sf, `${DATA}/sobjects/Opportunity/${OPP}`]]) {
      await stack.fake.clearRequests();
      const r = await call('GET', path, { headers: { [name]: 'DELETE' } });
      assert.equal(r.status, 400, `${crm} ${name}: ${r.status} ${r.text}`);
      assert.match(r.text, /header is not accepted/, r.text);
      assert.deepEqual(await stack.fake.requests(), [], `${crm} ${name}: nothing reaches the CRM`);
    }
  }
});

test('bug: Sforce-Call-Options defaultNamespace (which makes an unprefixed name a namespaced one) is refused, at the top and in a composite', { skip: GATE }, async () => {
  /* With defaultNamespace=ns Salesforce reads Name__c as ns__Name__c: the rules would check one
   * field and the CRM act on another. Other call options (client=...) pass as before. */
  const path = `${DATA}/sobjects/Opportunity/${OPP}`;
  for (const [name, value] of [['Sforce-Call-Options', 'client=agent, defaultNamespace=ns'], ['sforce_call_options', 'DEFAULTNAMESPACE=ns']]) {
    await stack.fake.clearRequests();
    const r = await sf('GET', path, { headers: { [name]: value } });
    assert.equal(r.status, 400, `${name}: ${r.status} ${r.text}`);
    assert.match(r.text, /defaultNamespace is not accepted/, r.text);
    assert.deepEqual(await stack.fake.requests(), [], `${name}: nothing reaches the CRM`);
  }
  const ok = await sf('GET', path, { headers: { 'Sforce-Call-Options': 'client=agent' } });
  assert.equal(ok.status, 200, ok.text);
  await stack.fake.clearRequests();
  const r = await sf('POST', `${DATA}/composite`, { body: { compositeRequest: [
    { method: 'GET', url: path, referenceId: 'a', httpHeaders: { 'Sforce-Call-Options': 'defaultNamespace=ns' } }] } });
  await expectRefused('salesforce', r, 'composite subrequest with defaultNamespace');
  assert.deepEqual(await stack.fake.requests(), []);
});

test('bug: a query locator handed out by a composite that also writes pages as a read', { skip: GATE }, async () => {
  /* crmgate remembers a locator with the operations of the request that handed it out. From a
   * composite with a PATCH beside the query, the follow-up GET /query/<locator> carried an
   * update (without its record or fields): crmgate took the page for a write, read a
   * before-state for nothing and recorded an update that never happened. */
  await stack.fake.seed({ salesforce: { objects: { Account: Array.from({ length: 210 }, (_, i) => ({ Name: `Bulk ${i}` })) } } });
  const c = await sf('POST', `${DATA}/composite`, {
    headers: { 'sforce-query-options': 'batchSize=200' },
    body: { compositeRequest: [
      { method: 'PATCH', url: `${DATA}/sobjects/Opportunity/${OPP}`, referenceId: 'w', body: { StageName: 'Qualification' } },
      { method: 'GET', url: `${DATA}/query?q=${encodeURIComponent('SELECT Name FROM Account')}`, referenceId: 'q' },
    ] },
  });
  assert.equal(c.status, 200, c.text);
  const page = c.json.compositeResponse[1].body;
  assert.ok(page.nextRecordsUrl, `the query pages: ${JSON.stringify(page).slice(0, 300)}`);
  newRecords();
  await stack.fake.clearRequests();
  const more = await sf('GET', page.nextRecordsUrl);
  assert.equal(more.status, 200, more.text);
  assert.equal(more.headers['x-crmgate-decision'], 'allow');
  assert.ok(more.json.records.length > 0, more.text);
  assert.deepEqual(newRecords(), [], 'a page is not audited as a write');
  assert.deepEqual((await stack.fake.requests()).map((x) => x.method), ['GET'], 'only the page was fetched');
});
