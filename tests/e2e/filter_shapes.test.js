'use strict';
/*
 * The response filter against answer shapes it was not written for, end to end, through the
 * real binary, for both CRMs (parity is a rule). The fake CRM answers each allowed call with a
 * body of the test's choosing (its 'status' fault with status 200), so the CRM's answer carries
 * record data where crmgate does not expect it: a HubSpot record under a new key, associations
 * that embed properties, a property bag that is not an object, a 409 naming another contact's
 * identities; a Salesforce record without attributes in "records", an attribute-less
 * relationship object, an array of records under a readable field, ...
 *
 * crmgate fails closed: every value the rules do not let the workspace read is either cut
 * (where the structure is a record it knows: a record's unknown member, an unknown member of a
 * HubSpot collection or error answer) or the whole answer is refused with 502
 * uninspectable_answer in the CRM's own error shape. No value marked LEAK ever reaches the
 * agent. Legitimate shapes (the references') pass byte for byte: the last cases.
 *
 *   CRMGATE_BIN=$PWD/crmgate node --test tests/e2e/filter_shapes.test.js
 */

const { test, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const harness = require('./harness.js');

const GATE = harness.crmgateAvailable() ? false : `crmgate binary not built (${harness.crmgateBinary()})`;
const HS_TOKEN = 'pat-na1-f11e0000-0000-0000-0000-000000000001';
const SF_TOKEN = '00DHs0000000001!AQfiltershapestoken';
const V = '62.0';
const DATA = `/services/data/v${V}`;

const RULES = {
  'shapes.json': {
    workspace: 'shapes',
    hubspot: {
      schema_read: true,
      objects: {
        contacts: { read: ['email', 'firstname', 'hs_object_id', 'createdate', 'lastmodifieddate'], write: ['firstname'], actions: { create: true, associate: true, merge: true } },
        companies: { read: ['name'] },
        deals: { read: ['dealname'], write: ['dealname'] },
      },
    },
    salesforce: {
      schema_read: true,
      objects: {
        Contact: { read: ['LastName', 'Email', 'AccountId', 'Account', 'MailingAddress', 'Notes__c'], write: ['LastName'] },
        Account: { read: ['Name', 'Contacts'] },
        Opportunity: { read: '*' },
      },
    },
  },
};
const CALLERS = [{ token: HS_TOKEN, workspace: 'shapes' }, { token: SF_TOKEN, workspace: 'shapes' }];

const CON = harness.sfId('003', 'Shap', 1);
const ACC = harness.sfId('001', 'Shap', 1);
const OPP = harness.sfId('006', 'Shap', 1);

let stack;

before(async () => {
  if (GATE) return;
  stack = await harness.startStack({ gate: { rules: RULES, callers: CALLERS } });
});

after(async () => {
  if (stack) await stack.stop();
});

afterEach(async () => {
  if (stack) await stack.fake.clearFaults();
});

async function call(crm, method, path, body) {
  const base = crm === 'hubspot' ? stack.hubspotBase : stack.salesforceBase;
  const token = crm === 'hubspot' ? HS_TOKEN : SF_TOKEN;
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: Object.fromEntries(r.headers), text, body: json };
}

/* Arm the fake to answer the next call to path (a regex on the raw path) with status and body. */
async function answer(method, path, status, body) {
  await stack.fake.fault({ match: { method, path }, action: 'status', status, body, count: 1 });
}

function expectRefused(r, crm) {
  assert.equal(r.status, 502, r.text);
  assert.equal(r.headers['x-crmgate-error'], 'uninspectable_answer', r.text);
  if (crm === 'hubspot') {
    assert.equal(r.body.status, 'error');
    assert.equal(r.body.subCategory, 'crmgate.uninspectable_answer');
    assert.equal(r.body.category, 'BAD_GATEWAY');
  } else {
    assert.ok(Array.isArray(r.body), r.text);
    assert.equal(r.body[0].crmgateError, 'uninspectable_answer');
    assert.equal(r.body[0].errorCode, 'BAD_GATEWAY');
  }
  assert.doesNotMatch(r.text, /LEAK/);
}

const hsRec = (id, props, extra = {}) => ({ id, properties: { hs_object_id: id, ...props }, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-02T00:00:00.000Z', archived: false, ...extra });
const sfAttr = (type, id) => ({ type, url: `${DATA}/sobjects/${type}/${id}` });

/*
 * Each case: the call, the fake's answer, and what the agent must get: `want` (the filtered
 * body, compared as parsed JSON, status 200 or the given one) or `refused` (502
 * uninspectable_answer). The old binary let every LEAK value of the `bug` cases through.
 */
const CASES = [
  /* ---------------- HubSpot ---------------- */
  {
    name: 'hubspot: a record nested under a new key of a record is cut', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101',
    answer: hsRec('101', { email: 'a@x.io', phone: 'LEAK-phone' }, { related: hsRec('9', { phone: 'LEAK-related' }) }),
    want: hsRec('101', { email: 'a@x.io' }),
  },
  {
    name: 'hubspot: an unknown member of a record is cut, whatever it holds', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101',
    answer: hsRec('101', { email: 'a@x.io' }, { extra: { phone: 'LEAK-flat-bag' }, identity: 'LEAK-scalar' }),
    want: hsRec('101', { email: 'a@x.io' }),
  },
  {
    name: 'hubspot: records under a new key of a search answer are cut', bug: true,
    crm: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts/search', body: { properties: ['email'], limit: 1 },
    answer: { total: 1, results: [hsRec('101', { email: 'a@x.io' })], included: { companies: [hsRec('202', { secret: 'LEAK-included' })] } },
    want: { total: 1, results: [hsRec('101', { email: 'a@x.io' })] },
  },
  {
    name: 'hubspot: an unknown member of a search answer is cut', bug: true,
    crm: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts/search', body: { properties: ['email'], limit: 1 },
    answer: { total: 1, results: [hsRec('101', { email: 'a@x.io' })], facets: { phone: ['LEAK-facet'] } },
    want: { total: 1, results: [hsRec('101', { email: 'a@x.io' })] },
  },
  {
    name: 'hubspot: associations that embed the associated record\'s properties refuse the answer', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101?associations=companies',
    answer: hsRec('101', { email: 'a@x.io' }, { associations: { companies: { results: [{ id: '202', type: 'contact_to_company', properties: { secret: 'LEAK-assoc' } }] } } }),
    refused: true,
  },
  {
    name: 'hubspot: propertiesWithHistory keeps only readable properties',
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101?propertiesWithHistory=email',
    answer: hsRec('101', { email: 'a@x.io' }, { propertiesWithHistory: { email: [{ value: 'a@x.io', timestamp: 't', sourceType: 'API' }], phone: [{ value: 'LEAK-history', timestamp: 't' }] } }),
    want: hsRec('101', { email: 'a@x.io' }, { propertiesWithHistory: { email: [{ value: 'a@x.io', timestamp: 't', sourceType: 'API' }] } }),
  },
  {
    name: 'hubspot: propertiesWithHistory that is not an object refuses the answer', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101?propertiesWithHistory=email',
    answer: hsRec('101', { email: 'a@x.io' }, { propertiesWithHistory: [{ name: 'phone', value: 'LEAK-history-array' }] }),
    refused: true,
  },
  {
    name: 'hubspot: a batch error that carries a record refuses the answer', bug: true,
    crm: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts/batch/read', body: { inputs: [{ id: '101' }], properties: ['email'] },
    answer: { status: 'COMPLETE', results: [hsRec('101', { email: 'a@x.io' })], numErrors: 1, errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'm', context: { record: hsRec('102', { phone: 'LEAK-error' }) } }], startedAt: 't', completedAt: 't' },
    refused: true,
  },
  {
    name: 'hubspot: a record spelt with escaped keys under a new key refuses the answer', bug: true,
    crm: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts/batch/read', body: { inputs: [{ id: '101' }], properties: ['email'] },
    raw: '{"status":"COMPLETE","results":[],"errors":[{"status":"error","category":"X","message":"m","context":{"r":{"id":"1","propert\\u0069es":{"phone":"LEAK-escaped"}}}}],"startedAt":"t","completedAt":"t"}',
    refused: true,
  },
  {
    name: 'hubspot: a v4 association list whose entries carry properties refuses the answer', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v4/objects/contacts/101/associations/companies',
    answer: { results: [{ toObjectId: 202, associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId: 1, label: 'Primary' }], properties: { name: 'Acme', secret: 'LEAK-v4' } }] },
    refused: true,
  },
  {
    name: 'hubspot: a 409 on create does not name the existing contact\'s identities', bug: true,
    crm: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts', body: { properties: { firstname: 'Ada' }, associations: [] },
    status: 409,
    answer: { status: 'error', message: 'Contact already exists. Existing ID: 37765128953', correlationId: 'c0ffee00-0000-0000-0000-000000000000', category: 'CONFLICT', identityProfile: { vid: 37765128953, identity: [{ value: 'LEAK@other.example', type: 'EMAIL' }] } },
    want: { status: 'error', message: 'Contact already exists. Existing ID: 37765128953', correlationId: 'c0ffee00-0000-0000-0000-000000000000', category: 'CONFLICT' },
  },
  {
    name: 'hubspot: a schema answer holding a record refuses the answer', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/owners',
    answer: { results: [{ id: '6166860', email: 'owner@x.io', firstName: 'J', lastName: 'S', type: 'PERSON', userId: 123, teams: [], lastContact: hsRec('101', { phone: 'LEAK-owner' }) }] },
    refused: true,
  },
  {
    name: 'hubspot: a legacy company keeps its identity and readable properties only', bug: true,
    crm: 'hubspot', method: 'GET', path: '/companies/v2/companies/202',
    answer: { portalId: 62515, companyId: 202, isDeleted: false, properties: { name: { value: 'Acme', timestamp: 1, source: 'API', versions: [{ name: 'name', value: 'Acme' }] }, domain: { value: 'LEAK.example', versions: [] } }, additionalDomains: ['LEAK-domain.example'], mergeAudits: [{ mergedCompanyName: 'LEAK-merged' }] },
    want: { portalId: 62515, companyId: 202, isDeleted: false, properties: { name: { value: 'Acme', timestamp: 1, source: 'API', versions: [{ name: 'name', value: 'Acme' }] } } },
  },

  {
    name: 'hubspot: a record\'s identity member holding an object refuses the answer', bug: true,
    crm: 'hubspot', method: 'GET', path: '/crm/v3/objects/contacts/101',
    answer: hsRec('101', { email: 'a@x.io' }, { updatedAt: { at: '2026-01-02', by: { phone: 'LEAK-identity' } } }),
    refused: true,
  },

  /* ---------------- Salesforce ---------------- */
  {
    name: 'salesforce: attributes that carry a record refuse the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Contact/${CON}`,
    answer: { attributes: { ...sfAttr('Contact', CON), related: { attributes: sfAttr('Contact', CON), Phone: 'LEAK-attributes' } }, Id: CON, LastName: 'L' },
    refused: true,
  },
  {
    name: 'salesforce: an Id holding an object refuses the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Contact/${CON}`,
    answer: { attributes: sfAttr('Contact', CON), Id: { value: CON, Phone: 'LEAK-id' }, LastName: 'L' },
    refused: true,
  },
  {
    name: 'salesforce: a record without attributes in a query\'s records refuses the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/query?q=${encodeURIComponent('SELECT Id, LastName FROM Contact')}`,
    answer: { totalSize: 1, done: true, records: [{ Id: CON, LastName: 'L', Phone: 'LEAK-no-attributes' }] },
    refused: true,
  },
  {
    name: 'salesforce: attributes without a type refuse the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/query?q=${encodeURIComponent('SELECT Id, LastName FROM Contact')}`,
    answer: { totalSize: 1, done: true, records: [{ attributes: { url: `${DATA}/sobjects/Contact/${CON}` }, Id: CON, Phone: 'LEAK-untyped' }] },
    refused: true,
  },
  {
    name: 'salesforce: a relationship object without attributes under a readable name refuses the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Contact/${CON}`,
    answer: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Account: { Name: 'Acme', Secret__c: 'LEAK-parent' } },
    refused: true,
  },
  {
    name: 'salesforce: a relationship record keeps only its own type\'s readable fields',
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Contact/${CON}`,
    answer: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Account: { attributes: sfAttr('Account', ACC), Id: ACC, Name: 'Acme', Secret__c: 'LEAK-parent' } },
    want: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Account: { attributes: sfAttr('Account', ACC), Id: ACC, Name: 'Acme' } },
  },
  {
    name: 'salesforce: records in an array under a readable field refuse the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Account/${ACC}`,
    answer: { attributes: sfAttr('Account', ACC), Id: ACC, Name: 'Acme', Contacts: [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Phone: 'LEAK-child-array' }] },
    refused: true,
  },
  {
    name: 'salesforce: an object under a read-all type\'s field must be a record or a compound value', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Opportunity/${OPP}`,
    answer: { attributes: sfAttr('Opportunity', OPP), Id: OPP, Name: 'Deal', Account: { Id: ACC, Name: 'Acme', Secret__c: 'LEAK-read-all' } },
    refused: true,
  },
  {
    name: 'salesforce: a compound address under a readable field passes',
    crm: 'salesforce', method: 'GET', path: `${DATA}/sobjects/Contact/${CON}`,
    answer: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', MailingAddress: { street: '1 Main', city: 'Springfield', postalCode: '1', country: 'US', latitude: null, longitude: null, geocodeAccuracy: null }, OtherAddress: { city: 'LEAK-unlisted' } },
    want: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', MailingAddress: { street: '1 Main', city: 'Springfield', postalCode: '1', country: 'US', latitude: null, longitude: null, geocodeAccuracy: null } },
  },
  {
    name: 'salesforce: a record without attributes in a collection answer refuses the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/composite/sobjects/Contact?ids=${CON}&fields=Id,LastName`,
    answer: [{ Id: CON, LastName: 'L', Phone: 'LEAK-collection' }],
    refused: true,
  },
  {
    name: 'salesforce: a record nested under an unexpected key is filtered by its own type',
    crm: 'salesforce', method: 'GET', path: `${DATA}/query?q=${encodeURIComponent('SELECT Id, LastName FROM Contact')}`,
    answer: { totalSize: 1, done: true, records: [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }], extra: { deep: [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Phone: 'LEAK-nested' }] } },
    want: { totalSize: 1, done: true, records: [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }], extra: { deep: [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }] } },
  },
  {
    name: 'salesforce: a child query whose records lack attributes refuses the answer', bug: true,
    crm: 'salesforce', method: 'GET', path: `${DATA}/query?q=${encodeURIComponent('SELECT Id, Name, (SELECT LastName FROM Contacts) FROM Account')}`,
    answer: { totalSize: 1, done: true, records: [{ attributes: sfAttr('Account', ACC), Id: ACC, Name: 'Acme', Contacts: { totalSize: 1, done: true, records: [{ LastName: 'L', Phone: 'LEAK-child' }] } }] },
    refused: true,
  },
  {
    name: 'salesforce: a composite sub-answer with an attribute-less record refuses the answer', bug: true,
    crm: 'salesforce', method: 'POST', path: `${DATA}/composite`,
    body: { compositeRequest: [{ method: 'GET', url: `${DATA}/sobjects/Contact/${CON}?fields=LastName`, referenceId: 'c' }] },
    answer: { compositeResponse: [{ body: { Id: CON, LastName: 'L', Phone: 'LEAK-composite' }, httpHeaders: {}, httpStatusCode: 200, referenceId: 'c' }] },
    refused: true,
  },
  {
    name: 'salesforce: DUPLICATES_DETECTED lists matching records filtered by their type',
    crm: 'salesforce', method: 'PATCH', path: `${DATA}/sobjects/Contact/${CON}`, body: { LastName: 'L' },
    status: 400,
    answer: [{ duplicateResult: { allowSave: false, duplicateRule: 'R', matchResults: [{ entityType: 'Contact', matchRecords: [{ record: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', Phone: 'LEAK-dup' }, matchConfidence: 100, fieldDiffs: [] }] }] }, errorCode: 'DUPLICATES_DETECTED', message: 'dup' }],
    want: [{ duplicateResult: { allowSave: false, duplicateRule: 'R', matchResults: [{ entityType: 'Contact', matchRecords: [{ record: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }, matchConfidence: 100, fieldDiffs: [] }] }] }, errorCode: 'DUPLICATES_DETECTED', message: 'dup' }],
  },
];

for (const c of CASES) {
  test(c.name, { skip: GATE }, async () => {
    const upstreamPath = `^${(c.crm === 'salesforce' ? c.path : c.path).split('?')[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`;
    await answer(c.method, upstreamPath, c.status || 200, c.raw !== undefined ? c.raw : c.answer);
    const r = await call(c.crm, c.method, c.path, c.body);
    if (c.refused) {
      expectRefused(r, c.crm);
      return;
    }
    assert.equal(r.status, c.status || 200, r.text);
    assert.doesNotMatch(r.text, /LEAK/);
    assert.deepEqual(r.body, c.want);
  });
}

/*
 * The references' own shapes pass as the CRM sent them, byte for byte (the fake's JSON is
 * compact; crmgate relays its bytes when nothing is cut).
 */
const VERBATIM = [
  ['hubspot', 'GET', '/crm/v3/objects/contacts/101?propertiesWithHistory=email&associations=companies',
    hsRec('101', { email: 'a@x.io', firstname: 'Ada' }, { propertiesWithHistory: { email: [{ value: 'a@x.io', timestamp: 't', sourceType: 'API', sourceId: null, sourceLabel: null }] }, associations: { companies: { results: [{ id: '202', type: 'contact_to_company' }] } }, url: 'https://app.hubspot.com/contacts/1/record/0-1/101', objectWriteTraceId: 'w1' })],
  ['hubspot', 'POST', '/crm/v3/objects/contacts/batch/read', { status: 'COMPLETE', results: [hsRec('101', { email: 'a@x.io' })], numErrors: 1, errors: [{ status: 'error', category: 'OBJECT_NOT_FOUND', message: 'Could not get some CONTACT objects', context: { ids: ['999'] }, errors: [], links: {} }], requestedAt: 't', startedAt: 't', completedAt: 't', links: {} },
    { inputs: [{ id: '101' }, { id: '999' }], properties: ['email'] }],
  ['hubspot', 'POST', '/crm/v3/objects/contacts/search', { total: 1, results: [hsRec('101', { email: 'a@x.io' })], paging: { next: { after: '1', link: '?after=1' } } },
    { properties: ['email'], limit: 1 }],
  ['hubspot', 'GET', '/crm/v4/objects/contacts/101/associations/companies', { results: [{ toObjectId: 202, associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId: 1, label: 'Primary' }] }], paging: { next: { after: 'x' } } }],
  ['hubspot', 'GET', '/crm/v3/properties/contacts', { results: [{ name: 'email', label: 'Email', type: 'string', fieldType: 'text', groupName: 'contactinformation', options: [], hasUniqueValue: false, modificationMetadata: { archivable: true, readOnlyDefinition: true, readOnlyValue: false } }] }],
  ['hubspot', 'GET', '/crm/v3/objects/contacts/101', { status: 'error', message: 'You have reached your secondly limit.', errorType: 'RATE_LIMIT', correlationId: 'c', policyName: 'SECONDLY', requestId: 'r' }, undefined, 429],
  ['salesforce', 'GET', `${DATA}/query?q=${encodeURIComponent('SELECT Id, Name, (SELECT LastName FROM Contacts) FROM Account')}`,
    { totalSize: 1, done: true, records: [{ attributes: sfAttr('Account', ACC), Id: ACC, Name: 'Acme', Contacts: { totalSize: 1, done: true, records: [{ attributes: sfAttr('Contact', CON), LastName: 'L' }] } }, { attributes: sfAttr('Account', ACC), Id: ACC, Name: 'B', Contacts: null }] }],
  ['salesforce', 'GET', `${DATA}/composite/sobjects/Contact?ids=${CON},${harness.sfId('003', 'Shap', 2)}&fields=Id,LastName`, [{ attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }, null]],
  ['salesforce', 'POST', `${DATA}/composite`, { compositeResponse: [{ body: { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L' }, httpHeaders: {}, httpStatusCode: 200, referenceId: 'c' }, { body: [{ errorCode: 'NOT_FOUND', message: 'nope' }], httpHeaders: {}, httpStatusCode: 404, referenceId: 'd' }] },
    { compositeRequest: [{ method: 'GET', url: `${DATA}/sobjects/Contact/${CON}?fields=LastName`, referenceId: 'c' }, { method: 'GET', url: `${DATA}/sobjects/Contact/${CON}?fields=LastName`, referenceId: 'd' }] }],
  ['salesforce', 'GET', `${DATA}/sobjects/Contact/${CON}`, { attributes: sfAttr('Contact', CON), Id: CON, LastName: 'L', MailingAddress: { street: '1 Main', city: 'X', state: null, postalCode: '1', country: 'US', latitude: 1.5, longitude: 2.5, geocodeAccuracy: 'Address' } }],
];

for (const [crm, method, path, body, reqBody, status] of VERBATIM) {
  test(`verbatim: ${crm} ${method} ${path.split('?')[0]}${status ? ` (${status})` : ''}`, { skip: GATE }, async () => {
    const raw = JSON.stringify(body);
    await answer(method, `^${path.split('?')[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, status || 200, raw);
    const r = await call(crm, method, path, reqBody);
    assert.equal(r.status, status || 200, r.text);
    assert.equal(r.text, raw);
  });
}
