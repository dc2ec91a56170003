'use strict';
/*
 * The fake Salesforce itself, spoken to directly over raw HTTP: ids and checksums, OAuth,
 * rows and system fields, validation errors, conditional requests (412/304), external-id
 * upserts (201/200/204/300/404), SOQL (filters, paths, subqueries, paging), SOSL, composite
 * (references, rollback), batch, collections (allOrNone), tree, limits. The jsforce suites
 * trust this fake, so it is checked here against the reference's documented behaviour.
 *
 *   node --test tests/e2e/fakecrm_salesforce.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const { startFake, requestJson } = require('./harness.js');
const { canonicalId, idChecksum } = require('../fakecrm/salesforce.js');

const TOKEN = '00DHs0000000001!AQtesttoken';
const V = '/services/data/v62.0';
let fake;

before(async () => { fake = await startFake(); });
after(async () => { if (fake) await fake.stop(); });
beforeEach(async () => { await fake.reset(); await fake.clearFaults(); });

/* One Salesforce call with the test token; returns {status, headers, body}. */
function sf(method, path, body, { token = TOKEN, headers = {} } = {}) {
  return requestJson(`${fake.url}${path}`, {
    method, body, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
}

function q(soql, headers) {
  return sf('GET', `${V}/query?q=${encodeURIComponent(soql)}`, undefined, { headers });
}

async function okQuery(soql, headers) {
  const r = await q(soql, headers);
  assert.equal(r.status, 200, `${soql}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function create(obj, fields) {
  const r = await sf('POST', `${V}/sobjects/${obj}`, fields);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

function seed(data) {
  return fake.seed({ salesforce: data });
}

/* Valid ids for seeds: prefix + 12 chars, with checksum. */
function sid(prefix, n) {
  const id15 = prefix + 'Seed' + String(n).padStart(8, '0');
  return id15 + idChecksum(id15);
}

const ID18 = /^[a-zA-Z0-9]{18}$/;

/* ---------------- ids ---------------- */

test('ids: checksum test vectors, case restore from the suffix, generated ids carry prefix and checksum', async () => {
  assert.equal(idChecksum('a0RE000000IJmcN'), 'MAT');
  assert.equal(idChecksum('001D000000IqhSL'), 'IAZ');
  assert.equal(canonicalId('001D000000IqhSL'), '001D000000IqhSLIAZ');
  assert.equal(canonicalId('001d000000iqhsliaz'), '001D000000IqhSLIAZ', '18-char ids are case-insensitive');
  assert.equal(canonicalId('001D000000IqhSL1AZ'), null, "suffix '1' flags a digit as upper case: not an id");
  assert.equal(canonicalId('001D000000IqhS'), null);

  const prefixes = { Account: '001', Contact: '003', Lead: '00Q', Opportunity: '006', Case: '500', Task: '00T' };
  const bodies = {
    Account: { Name: 'A' }, Contact: { LastName: 'B' }, Lead: { LastName: 'C', Company: 'D' },
    Opportunity: { Name: 'E', StageName: 'Prospecting', CloseDate: '2030-01-01' }, Case: { Subject: 'F' }, Task: { Subject: 'G' },
  };
  for (const [obj, prefix] of Object.entries(prefixes)) {
    const id = await create(obj, bodies[obj]);
    assert.match(id, ID18);
    assert.ok(id.startsWith(prefix), `${obj} id ${id}`);
    assert.equal(id.slice(15), idChecksum(id.slice(0, 15)));
  }
  const st = await fake.state();
  assert.match(st.salesforce.objects.User[0].Id, /^005/);
});

test('ids: 15-char and lower-cased 18-char ids address the same row; wrong prefix is MALFORMED_ID; non-ids are external-id field names', async () => {
  const id = await create('Account', { Name: 'Acme' });
  for (const form of [id.slice(0, 15), id.toLowerCase()]) {
    const r = await sf('GET', `${V}/sobjects/Account/${form}?fields=Name`);
    assert.equal(r.status, 200, form);
    assert.equal(r.body.Id, id);
  }
  const contact = await create('Contact', { LastName: 'Smith' });
  const wrong = await sf('GET', `${V}/sobjects/Account/${contact}`);
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body[0].errorCode, 'MALFORMED_ID');
  assert.equal(wrong.body[0].message, `Account ID: id value of incorrect type: ${contact}`);
  const ext = await sf('GET', `${V}/sobjects/Lead/tmp_sf_123`);
  assert.equal(ext.status, 404);
  assert.deepEqual(ext.body, [{ message: 'Provided external ID field does not exist or is not accessible: tmp_sf_123', errorCode: 'NOT_FOUND' }]);
});

/* ---------------- auth, discovery, limits ---------------- */

test('auth: missing token -> 401 INVALID_SESSION_ID; discovery is public; OAuth grants return instance_url', async () => {
  const r = await sf('GET', `${V}/sobjects`, undefined, { token: null });
  assert.equal(r.status, 401);
  assert.deepEqual(r.body, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);

  const versions = await sf('GET', '/services/data/', undefined, { token: null });
  assert.equal(versions.status, 200);
  assert.deepEqual(versions.body.find((v) => v.version === '62.0'), { label: "Winter '25", url: '/services/data/v62.0', version: '62.0' });

  const res = await sf('GET', `${V}/`);
  assert.equal(res.body.sobjects, `${V}/sobjects`);
  assert.equal(res.body.query, `${V}/query`);

  for (const body of ['grant_type=refresh_token&refresh_token=RT1&client_id=c&client_secret=s',
    'grant_type=password&username=u%40x.com&password=pw&client_id=c&client_secret=s',
    'grant_type=client_credentials&client_id=c&client_secret=s']) {
    const t = await postForm('/services/oauth2/token', body);
    assert.equal(t.status, 200, body);
    assert.equal(t.body.instance_url, fake.url);
    assert.equal(t.body.token_type, 'Bearer');
    assert.ok(t.body.access_token.length > 10);
    const use = await sf('GET', `${V}/limits`, undefined, { token: t.body.access_token });
    assert.equal(use.status, 200);
  }
  const bad = await postForm('/services/oauth2/token', 'grant_type=refresh_token&client_id=c');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'invalid_grant');
  const unsupported = await postForm('/services/oauth2/token', 'grant_type=magic');
  assert.equal(unsupported.body.error, 'unsupported_grant_type');

  const revoke = await postForm('/services/oauth2/revoke', `token=${encodeURIComponent(TOKEN)}`);
  assert.equal(revoke.status, 200);
  assert.equal((await sf('GET', `${V}/limits`)).status, 401, 'a revoked token is refused');
});

function postForm(path, body) {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    const req = http.request(`${fake.url}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, headers: res.headers, body: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('Sforce-Limit-Info counts calls (composite = 1, batch = per subrequest) and /limits agrees', async () => {
  const a = await sf('GET', `${V}/limits`);
  const n = Number(/api-usage=(\d+)\/15000/.exec(a.headers['sforce-limit-info'])[1]);
  assert.equal(a.body.DailyApiRequests.Max, 15000);
  assert.equal(a.body.DailyApiRequests.Remaining, 15000 - n);
  const b = await sf('GET', `${V}/sobjects`);
  assert.equal(b.headers['sforce-limit-info'], `api-usage=${n + 1}/15000`);
  await sf('POST', `${V}/composite`, { compositeRequest: [
    { method: 'GET', url: `${V}/limits`, referenceId: 'a' }, { method: 'GET', url: `${V}/limits`, referenceId: 'b' }] });
  const c = await sf('POST', `${V}/composite/batch`, { batchRequests: [
    { method: 'GET', url: 'v62.0/limits' }, { method: 'GET', url: 'v62.0/limits' }, { method: 'GET', url: 'v62.0/limits' }] });
  assert.equal(c.headers['sforce-limit-info'], `api-usage=${n + 5}/15000`);
});

/* ---------------- describe ---------------- */

test('describe: global list, field metadata, child relationships, seeded custom fields', async () => {
  await seed({ customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true, unique: true }] } });
  const g = await sf('GET', `${V}/sobjects`);
  assert.equal(g.body.maxBatchSize, 200);
  const names = g.body.sobjects.map((s) => s.name);
  for (const n of ['Account', 'Contact', 'Lead', 'Opportunity', 'Case', 'Task', 'User']) assert.ok(names.includes(n), n);
  assert.equal(g.body.sobjects.find((s) => s.name === 'Lead').keyPrefix, '00Q');

  const d = (await sf('GET', `${V}/sobjects/Account/describe`)).body;
  const f = (n) => d.fields.find((x) => x.name === n);
  assert.deepEqual([f('Name').type, f('Name').createable, f('Name').updateable, f('Name').nillable], ['string', true, true, false]);
  assert.deepEqual([f('CreatedDate').type, f('CreatedDate').createable, f('CreatedDate').updateable], ['datetime', false, false]);
  assert.deepEqual([f('OwnerId').type, f('OwnerId').referenceTo, f('OwnerId').relationshipName], ['reference', ['User'], 'Owner']);
  assert.equal(f('BillingAddress').type, 'address');
  assert.equal(f('AnnualRevenue').type, 'currency');
  assert.deepEqual([f('Ext__c').externalId, f('Ext__c').idLookup, f('Ext__c').custom, f('Ext__c').unique], [true, true, true, true]);
  assert.ok(d.childRelationships.some((c) => c.relationshipName === 'Contacts' && c.childSObject === 'Contact' && c.field === 'AccountId'));
  const opp = (await sf('GET', `${V}/sobjects/Opportunity/describe`)).body;
  assert.equal(opp.fields.find((x) => x.name === 'IsClosed').updateable, false);
  assert.equal(opp.fields.find((x) => x.name === 'AccountId').relationshipName, 'Account');
  const basic = await sf('GET', `${V}/sobjects/Account`);
  assert.equal(basic.body.objectDescribe.name, 'Account');
  assert.deepEqual(basic.body.recentItems, []);
  assert.equal((await sf('GET', `${V}/sobjects/Nope__c/describe`)).status, 404);
});

/* ---------------- rows ---------------- */

test('rows: create 201 + Location, GET with attributes/Last-Modified/ETag, ?fields, PATCH 204 moves system fields, DELETE 204 then ENTITY_IS_DELETED', async () => {
  const c = await sf('POST', `${V}/sobjects/Account`, { Name: 'Express Logistics', Industry: 'Transport', BillingCity: 'Paris' });
  assert.equal(c.status, 201);
  assert.deepEqual(Object.keys(c.body), ['id', 'success', 'errors']);
  assert.equal(c.headers.location, `${V}/sobjects/Account/${c.body.id}`);
  const id = c.body.id;

  const g = await sf('GET', `${V}/sobjects/Account/${id}`);
  assert.equal(g.status, 200);
  assert.match(g.headers['content-type'], /^application\/json;charset=utf-8$/i);
  assert.deepEqual(g.body.attributes, { type: 'Account', url: `${V}/sobjects/Account/${id}` });
  assert.equal(g.body.Name, 'Express Logistics');
  assert.equal(g.body.Phone, null, 'unset fields are null in a full GET');
  assert.equal(g.body.BillingAddress.city, 'Paris');
  assert.equal(g.body.IsDeleted, false);
  assert.match(g.body.CreatedDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$/);
  assert.match(g.body.OwnerId, /^005/);
  assert.equal(g.body.CreatedById, g.body.OwnerId);
  assert.equal(g.headers['last-modified'], new Date(Date.parse(g.body.LastModifiedDate)).toUTCString());
  assert.match(g.headers.etag, /^"[A-Za-z0-9+/=]+"$/);

  const some = await sf('GET', `${V}/sobjects/Account/${id}?fields=Name,Industry`);
  assert.deepEqual(some.body, { attributes: g.body.attributes, Name: 'Express Logistics', Industry: 'Transport', Id: id });
  const badField = await sf('GET', `${V}/sobjects/Account/${id}?fields=Name,Foo__c`);
  assert.equal(badField.status, 400);
  assert.deepEqual(badField.body, [{ message: "No such column 'Foo__c' on sobject of type Account", errorCode: 'INVALID_FIELD' }]);

  await new Promise((r) => setTimeout(r, 15));
  const p = await sf('PATCH', `${V}/sobjects/Account/${id}`, { Industry: null, Phone: '555-1234' });
  assert.equal(p.status, 204);
  assert.equal(p.body, '');
  assert.equal(p.headers['content-type'], undefined);
  const after = (await sf('GET', `${V}/sobjects/Account/${id}`)).body;
  assert.equal(after.Industry, null, 'null clears a field');
  assert.equal(after.Phone, '555-1234');
  assert.equal(after.Name, 'Express Logistics', 'omitted fields are unchanged');
  assert.equal(after.CreatedDate, g.body.CreatedDate);
  assert.ok(after.LastModifiedDate > g.body.LastModifiedDate);
  assert.ok(after.SystemModstamp > g.body.SystemModstamp);

  const d = await sf('DELETE', `${V}/sobjects/Account/${id}`);
  assert.equal(d.status, 204);
  for (const method of ['GET', 'DELETE']) {
    const again = await sf(method, `${V}/sobjects/Account/${id}`);
    assert.equal(again.status, 404);
    assert.deepEqual(again.body, [{ message: 'entity is deleted', errorCode: 'ENTITY_IS_DELETED', fields: [] }]);
  }
  const missing = await sf('GET', `${V}/sobjects/Account/${sid('001', 99)}`);
  assert.deepEqual([missing.status, missing.body[0].errorCode], [404, 'NOT_FOUND']);

  const st = await fake.state();
  assert.equal(st.salesforce.deleted.Account[0].Id, id);
  assert.equal(st.salesforce.deleted.Account[0].IsDeleted, true);
  assert.equal(st.salesforce.objects.Account, undefined);
});

test('rows: POST ?_HttpMethod=PATCH updates; HEAD answers without a body', async () => {
  const id = await create('Contact', { LastName: 'Old' });
  const r = await sf('POST', `${V}/sobjects/Contact/${id}?_HttpMethod=PATCH`, { LastName: 'New', FirstName: 'Ada' });
  assert.equal(r.status, 204);
  const g = (await sf('GET', `${V}/sobjects/Contact/${id}?fields=LastName,Name`)).body;
  assert.equal(g.LastName, 'New');
  assert.equal(g.Name, 'Ada New', 'Name is derived from FirstName + LastName');
  const h = await sf('HEAD', `${V}/sobjects/Contact/${id}`);
  assert.equal(h.status, 200);
  assert.equal(h.body, '');
});

test('writes: INVALID_FIELD_FOR_INSERT_UPDATE, INVALID_FIELD, REQUIRED_FIELD_MISSING, Id in a create body, bad lookups, bad JSON', async () => {
  const ro = await sf('POST', `${V}/sobjects/Account`, { Name: 'x', LastModifiedDate: '2024-01-01T00:00:00.000+0000', CreatedDate: '2024-01-01T00:00:00.000+0000' });
  assert.equal(ro.status, 400);
  assert.deepEqual(ro.body, [{
    message: 'Unable to create/update fields: LastModifiedDate, CreatedDate. Please check the security settings of this field and verify that it is read/write for your profile or permission set.',
    errorCode: 'INVALID_FIELD_FOR_INSERT_UPDATE', fields: ['LastModifiedDate', 'CreatedDate'],
  }]);
  const compound = await sf('POST', `${V}/sobjects/Account`, { Name: 'x', BillingAddress: { city: 'Paris' } });
  assert.equal(compound.body[0].errorCode, 'INVALID_FIELD_FOR_INSERT_UPDATE');

  const unknown = await sf('POST', `${V}/sobjects/Account`, { Name: 'x', Foo__c: 1 });
  assert.deepEqual(unknown.body, [{ message: "No such column 'Foo__c' on sobject of type Account", errorCode: 'INVALID_FIELD' }]);

  const noLast = await sf('POST', `${V}/sobjects/Contact`, { FirstName: 'Ada' });
  assert.equal(noLast.status, 400);
  assert.deepEqual(noLast.body, [{ message: 'Required fields are missing: [LastName]', errorCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName'] }]);
  const opp = await sf('POST', `${V}/sobjects/Opportunity`, { Amount: 5 });
  assert.deepEqual(opp.body[0].fields, ['Name', 'StageName', 'CloseDate']);
  const acc = await create('Account', { Name: 'Keep' });
  const clear = await sf('PATCH', `${V}/sobjects/Account/${acc}`, { Name: null });
  assert.deepEqual([clear.status, clear.body[0].errorCode], [400, 'REQUIRED_FIELD_MISSING']);

  const withId = await sf('POST', `${V}/sobjects/Account`, { Id: acc, Name: 'x' });
  assert.deepEqual(withId.body, [{ message: 'The Id field should not be specified in the sobject data.', errorCode: 'INVALID_FIELD' }]);

  const badRef = await sf('POST', `${V}/sobjects/Contact`, { LastName: 'x', AccountId: 'nonsense' });
  assert.deepEqual(badRef.body, [{ message: 'Account ID: id value of incorrect type: nonsense', errorCode: 'MALFORMED_ID', fields: ['AccountId'] }]);
  const ghost = await sf('POST', `${V}/sobjects/Contact`, { LastName: 'x', AccountId: sid('001', 7) });
  assert.deepEqual([ghost.status, ghost.body[0].errorCode], [400, 'INVALID_CROSS_REFERENCE_KEY']);

  const badJson = await requestJson(`${fake.url}${V}/sobjects/Account`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: undefined,
  });
  assert.deepEqual([badJson.status, badJson.body[0].errorCode], [400, 'JSON_PARSER_ERROR']);
  const badDate = await sf('POST', `${V}/sobjects/Opportunity`, { Name: 'o', StageName: 'Prospecting', CloseDate: 'soon' });
  assert.deepEqual([badDate.status, badDate.body[0].errorCode], [400, 'JSON_PARSER_ERROR']);
  const badEmail = await sf('POST', `${V}/sobjects/Contact`, { LastName: 'x', Email: 'not-an-email' });
  assert.deepEqual(badEmail.body, [{ message: 'Email: invalid email address: not-an-email', errorCode: 'INVALID_EMAIL_ADDRESS', fields: ['Email'] }]);

  assert.equal((await fake.state()).salesforce.objects.Contact, undefined, 'no failed write left a record');
});

test('derived fields: Opportunity stage sets IsClosed/IsWon/Probability; Case numbers and closure', async () => {
  const id = await create('Opportunity', { Name: 'Deal', StageName: 'Prospecting', CloseDate: '2030-06-30', Amount: 1000 });
  let o = (await sf('GET', `${V}/sobjects/Opportunity/${id}?fields=IsClosed,IsWon,Probability,ExpectedRevenue,ForecastCategoryName`)).body;
  assert.deepEqual([o.IsClosed, o.IsWon, o.Probability, o.ExpectedRevenue, o.ForecastCategoryName], [false, false, 10, 100, 'Pipeline']);
  assert.equal((await sf('PATCH', `${V}/sobjects/Opportunity/${id}`, { StageName: 'Closed Won' })).status, 204);
  o = (await sf('GET', `${V}/sobjects/Opportunity/${id}?fields=IsClosed,IsWon,Probability`)).body;
  assert.deepEqual([o.IsClosed, o.IsWon, o.Probability], [true, true, 100]);
  const ro = await sf('PATCH', `${V}/sobjects/Opportunity/${id}`, { IsWon: false });
  assert.deepEqual(ro.body[0].fields, ['IsWon']);

  const c1 = await create('Case', { Subject: 'Broken' });
  const c2 = await create('Case', { Subject: 'Also broken', Status: 'Closed' });
  const cases = (await okQuery(`SELECT CaseNumber, Status, IsClosed FROM Case WHERE Id IN ('${c1}','${c2}') ORDER BY CaseNumber`)).records;
  assert.deepEqual(cases.map((c) => [c.CaseNumber, c.Status, c.IsClosed]), [['00001001', 'New', false], ['00001002', 'Closed', true]]);
});

/* ---------------- conditional requests ---------------- */

test('conditional: If-Unmodified-Since -> 412 when modified after, If-Match ETag on Account, If-Modified-Since -> 304', async () => {
  const id = sid('001', 1);
  await seed({ objects: { Account: [{ Id: id, Name: 'Old', LastModifiedDate: '2024-05-14T10:03:11.000+0000', SystemModstamp: '2024-05-14T10:03:11.000+0000' }] } });
  const g = await sf('GET', `${V}/sobjects/Account/${id}`);
  assert.equal(g.headers['last-modified'], 'Tue, 14 May 2024 10:03:11 GMT');

  const stale = await sf('PATCH', `${V}/sobjects/Account/${id}`, { Name: 'Lost update' }, { headers: { 'if-unmodified-since': 'Tue, 14 May 2024 10:03:10 GMT' } });
  assert.equal(stale.status, 412);
  assert.ok(Array.isArray(stale.body) && stale.body[0].errorCode);
  assert.equal((await sf('GET', `${V}/sobjects/Account/${id}?fields=Name`)).body.Name, 'Old', '412 writes nothing');

  const wrongTag = await sf('PATCH', `${V}/sobjects/Account/${id}`, { Name: 'x' }, { headers: { 'if-match': '"bogus"' } });
  assert.equal(wrongTag.status, 412);

  const nm = await sf('GET', `${V}/sobjects/Account/${id}`, undefined, { headers: { 'if-modified-since': g.headers['last-modified'] } });
  assert.equal(nm.status, 304);
  const inm = await sf('GET', `${V}/sobjects/Account/${id}`, undefined, { headers: { 'if-none-match': g.headers.etag } });
  assert.equal(inm.status, 304);

  const fresh = await sf('PATCH', `${V}/sobjects/Account/${id}`, { Name: 'New' }, { headers: { 'if-unmodified-since': g.headers['last-modified'], 'if-match': g.headers.etag } });
  assert.equal(fresh.status, 204);
  const now = await sf('GET', `${V}/sobjects/Account/${id}`);
  assert.equal(now.body.Name, 'New');
  assert.notEqual(now.headers.etag, g.headers.etag, 'the ETag moves with the record');
  const old = await sf('PATCH', `${V}/sobjects/Account/${id}`, { Name: 'x' }, { headers: { 'if-unmodified-since': g.headers['last-modified'] } });
  assert.equal(old.status, 412, 'the record is now newer than the old Last-Modified');
});

/* ---------------- external ids ---------------- */

test('upsert by external id: 201 created:true, 200 created:false, 204 at v45, 300 on duplicates, 404 for a non-external field, GET by value', async () => {
  await seed({ customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true }] } });
  const ins = await sf('PATCH', `${V}/sobjects/Account/Ext__c/11999`, { Name: 'California Wheat', Type: 'Prospect' });
  assert.equal(ins.status, 201);
  assert.deepEqual(Object.keys(ins.body), ['id', 'success', 'errors', 'created']);
  assert.equal(ins.body.created, true);
  const upd = await sf('PATCH', `${V}/sobjects/Account/Ext__c/11999`, { Name: 'California Wheat Corp' });
  assert.deepEqual([upd.status, upd.body], [200, { id: ins.body.id, success: true, errors: [], created: false }]);
  const old = await sf('PATCH', '/services/data/v45.0/sobjects/Account/Ext__c/11999', { Type: 'Other' });
  assert.equal(old.status, 204);

  const byExt = await sf('GET', `${V}/sobjects/Account/Ext__c/11999?fields=Name,Type,Ext__c`);
  assert.deepEqual(byExt.body, { attributes: { type: 'Account', url: `${V}/sobjects/Account/${ins.body.id}` }, Name: 'California Wheat Corp', Type: 'Other', Ext__c: '11999', Id: ins.body.id });

  const enc = await sf('PATCH', `${V}/sobjects/Account/Ext__c/${encodeURIComponent('A/B 1')}`, { Name: 'Slash' });
  assert.equal(enc.status, 201);
  assert.equal((await sf('GET', `${V}/sobjects/Account/${enc.body.id}?fields=Ext__c`)).body.Ext__c, 'A/B 1', 'an encoded / stays in the value');

  await seed({ objects: { Account: [{ Name: 'Dup1', Ext__c: 'D' }, { Name: 'Dup2', Ext__c: 'D' }] } });
  const multi = await sf('PATCH', `${V}/sobjects/Account/Ext__c/D`, { Name: 'x' });
  assert.equal(multi.status, 300);
  assert.equal(multi.body.length, 2);
  for (const u of multi.body) assert.match(u, /^\/services\/data\/v62\.0\/sobjects\/Account\/001[a-zA-Z0-9]{15}$/);
  assert.equal((await sf('GET', `${V}/sobjects/Account/Ext__c/D`)).status, 300);

  const notExt = await sf('PATCH', `${V}/sobjects/Account/Name/x`, { Industry: 'y' });
  assert.deepEqual([notExt.status, notExt.body], [404, [{ message: 'Provided external ID field does not exist or is not accessible: Name', errorCode: 'NOT_FOUND' }]]);
  const none = await sf('GET', `${V}/sobjects/Account/Ext__c/nothing`);
  assert.deepEqual([none.status, none.body[0].errorCode], [404, 'NOT_FOUND']);
  const mismatch = await sf('PATCH', `${V}/sobjects/Account/Ext__c/E1`, { Name: 'x', Ext__c: 'E2' });
  assert.equal(mismatch.status, 400);
  const del = await sf('DELETE', `${V}/sobjects/Account/Ext__c/11999`);
  assert.equal(del.status, 204);
});

/* ---------------- SOQL ---------------- */

/* A small CRM: two accounts with contacts and opportunities, one orphan contact. */
async function seedSmallOrg() {
  const acme = sid('001', 1); const globex = sid('001', 2);
  await seed({
    objects: {
      Account: [
        { Id: acme, Name: 'Acme', Industry: 'Manufacturing', AnnualRevenue: 5000000, NumberOfEmployees: 120 },
        { Id: globex, Name: 'Globex', Industry: null, AnnualRevenue: 100000, NumberOfEmployees: 8 },
      ],
      Contact: [
        { Id: sid('003', 1), LastName: 'Smith', FirstName: 'Ann', AccountId: acme, Email: 'ann@acme.test' },
        { Id: sid('003', 2), LastName: "O'Brien", FirstName: 'Bob', AccountId: acme, Email: 'bob@acme.test' },
        { Id: sid('003', 3), LastName: 'Jones', FirstName: 'Cy', AccountId: globex },
        { Id: sid('003', 4), LastName: 'Loner', FirstName: null },
      ],
      Opportunity: [
        { Id: sid('006', 1), Name: 'Acme big', StageName: 'Closed Won', CloseDate: '2024-03-15', Amount: 50000, AccountId: acme },
        { Id: sid('006', 2), Name: 'Acme small', StageName: 'Prospecting', CloseDate: '2024-07-01', Amount: 1000, AccountId: acme },
        { Id: sid('006', 3), Name: 'Globex', StageName: 'Negotiation/Review', CloseDate: '2025-01-10', Amount: null, AccountId: globex },
      ],
    },
  });
  return { acme, globex };
}

test('SOQL: field lists, WHERE with AND/OR/NOT, IN, NOT IN, LIKE, NULL, numbers, dates, ORDER BY, LIMIT/OFFSET', async () => {
  await seedSmallOrg();
  const names = async (soql) => (await okQuery(soql)).records.map((r) => r.Name || r.LastName);

  const all = await okQuery('SELECT Id, Name FROM Account ORDER BY Name');
  assert.equal(all.totalSize, 2);
  assert.equal(all.done, true);
  assert.deepEqual(Object.keys(all.records[0]), ['attributes', 'Id', 'Name']);
  assert.deepEqual(all.records[0].attributes, { type: 'Account', url: `${V}/sobjects/Account/${sid('001', 1)}` });

  assert.deepEqual(await names("SELECT Name FROM Opportunity WHERE StageName = 'closed won'"), ['Acme big'], '= on text is case-insensitive');
  assert.deepEqual(await names('SELECT Name FROM Opportunity WHERE Amount > 1000 OR Amount = null ORDER BY Name'), ['Acme big', 'Globex']);
  assert.deepEqual(await names("SELECT Name FROM Opportunity WHERE NOT (StageName = 'Prospecting' OR Amount = null)"), ['Acme big']);
  assert.deepEqual(await names("SELECT Name FROM Opportunity WHERE Amount >= 1000 AND (Name LIKE 'acme%' AND NOT Name LIKE '%big') "), ['Acme small']);
  assert.deepEqual(await names("SELECT LastName FROM Contact WHERE LastName IN ('Smith', 'Jones') ORDER BY LastName DESC"), ['Smith', 'Jones']);
  assert.deepEqual(await names("SELECT LastName FROM Contact WHERE LastName NOT IN ('Smith', 'Jones') ORDER BY LastName"), ['Loner', "O'Brien"]);
  assert.deepEqual(await names("SELECT LastName FROM Contact WHERE LastName = 'O\\'Brien'"), ["O'Brien"]);
  assert.deepEqual(await names("SELECT LastName FROM Contact WHERE LastName LIKE '_ones'"), ['Jones']);
  assert.deepEqual(await names('SELECT LastName FROM Contact WHERE AccountId = null'), ['Loner']);
  assert.deepEqual(await names('SELECT LastName FROM Contact WHERE AccountId != null ORDER BY LastName'), ['Jones', "O'Brien", 'Smith']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Industry != 'Manufacturing'"), ['Globex'], '!= keeps nulls');
  assert.deepEqual(await names('SELECT Name FROM Opportunity WHERE CloseDate >= 2024-07-01 ORDER BY CloseDate'), ['Acme small', 'Globex']);
  assert.deepEqual(await names('SELECT Name FROM Opportunity WHERE CloseDate < 2024-07-01'), ['Acme big']);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate = TODAY ORDER BY Name'), ['Acme', 'Globex']);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:3 ORDER BY Name'), ['Acme', 'Globex']);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate < YESTERDAY'), []);
  assert.deepEqual(await names('SELECT Name FROM Account WHERE CreatedDate > 2020-01-01T00:00:00Z AND IsDeleted = false ORDER BY Name'), ['Acme', 'Globex']);
  assert.deepEqual(await names('SELECT Name FROM Opportunity ORDER BY Amount DESC NULLS FIRST'), ['Globex', 'Acme big', 'Acme small']);
  assert.deepEqual(await names('SELECT Name FROM Opportunity ORDER BY Amount ASC'), ['Globex', 'Acme small', 'Acme big'], 'ASC puts nulls first');
  assert.deepEqual(await names('SELECT Name FROM Opportunity ORDER BY Amount DESC'), ['Acme big', 'Acme small', 'Globex'], 'DESC puts nulls last');
  assert.deepEqual(await names('SELECT Name FROM Opportunity ORDER BY CloseDate LIMIT 1 OFFSET 1'), ['Acme small']);
  assert.deepEqual(await names("SELECT Name FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE StageName = 'Closed Won')"), ['Acme']);

  const count = await okQuery("SELECT COUNT() FROM Contact WHERE AccountId != null");
  assert.deepEqual(count, { totalSize: 3, done: true, records: [] });
  const agg = await okQuery('SELECT AccountId, COUNT(Id) n, SUM(Amount) FROM Opportunity GROUP BY AccountId ORDER BY AccountId');
  const acme = agg.records.find((r) => r.AccountId === sid('001', 1));
  assert.deepEqual(acme, { attributes: { type: 'AggregateResult' }, AccountId: sid('001', 1), n: 2, expr0: 51000 });

  const spaced = await sf('GET', `${V}/query?q=SELECT+Name+FROM+Account+WHERE+Name+%3D+%27Acme%27`);
  assert.equal(spaced.body.records[0].Name, 'Acme', "'+' decodes as a space");
  const slash = await sf('GET', `${V}/query/?q=SELECT%20Name%20FROM%20Account`);
  assert.equal(slash.body.totalSize, 2);
});

test('SOQL: parent paths, child subqueries, polymorphic and null parents', async () => {
  const { acme } = await seedSmallOrg();
  const r = await okQuery("SELECT Id, LastName, Account.Name, Account.Owner.Name FROM Contact WHERE Account.Name = 'Acme' ORDER BY LastName");
  assert.equal(r.totalSize, 2);
  assert.deepEqual(r.records[0].Account, {
    attributes: { type: 'Account', url: `${V}/sobjects/Account/${acme}` }, Name: 'Acme',
    Owner: { attributes: r.records[0].Account.Owner.attributes, Name: 'Crmgate Integration' },
  });
  assert.equal(r.records[0].Account.Owner.attributes.type, 'User');
  const loner = await okQuery("SELECT LastName, Account.Name FROM Contact WHERE LastName = 'Loner'");
  assert.equal(loner.records[0].Account, null);

  const sub = await okQuery("SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName), (SELECT Name FROM Opportunities WHERE Amount > 10000) FROM Account ORDER BY Name");
  assert.deepEqual(sub.records[0].Contacts.records.map((c) => c.LastName), ["O'Brien", 'Smith']);
  assert.deepEqual([sub.records[0].Contacts.totalSize, sub.records[0].Contacts.done], [2, true]);
  assert.deepEqual(sub.records[0].Opportunities.records.map((o) => o.Name), ['Acme big']);
  assert.equal(sub.records[1].Opportunities, null, 'an empty child set is null');

  const task = await create('Task', { Subject: 'Call', WhoId: sid('003', 1), WhatId: sid('006', 1) });
  const t = await okQuery(`SELECT Subject, Who.Name, What.Name, AccountId FROM Task WHERE Id = '${task}'`);
  assert.equal(t.records[0].Who.attributes.type, 'Contact');
  assert.equal(t.records[0].Who.Name, 'Ann Smith');
  assert.equal(t.records[0].What.attributes.type, 'Opportunity');
  assert.equal(t.records[0].AccountId, acme, 'Task.AccountId follows the WhatId opportunity');
});

test('SOQL errors: MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE with position, quoted dates, bad ids', async () => {
  await seedSmallOrg();
  const bad = await q('SELECT Id FROM Account WHERE');
  assert.equal(bad.status, 400);
  assert.equal(bad.body[0].errorCode, 'MALFORMED_QUERY');
  assert.match(bad.body[0].message, /ERROR at Row:1:Column:\d+/);

  const field = await q('SELECT Id, Foo FROM Account');
  assert.deepEqual(field.body, [{
    message: "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
    errorCode: 'INVALID_FIELD',
  }]);
  const rel = await q('SELECT Acount.Name FROM Contact');
  assert.equal(rel.body[0].errorCode, 'INVALID_FIELD');
  assert.match(rel.body[0].message, /Didn't understand relationship 'Acount'/);
  const type = await q('SELECT Id FROM Foo');
  assert.equal(type.body[0].errorCode, 'INVALID_TYPE');
  assert.match(type.body[0].message, /sObject type 'Foo' is not supported/);
  const child = await q('SELECT Id, (SELECT Id FROM Kids) FROM Account');
  assert.equal(child.body[0].errorCode, 'INVALID_TYPE');
  const quoted = await q("SELECT Id FROM Opportunity WHERE CloseDate > '2024-01-01'");
  assert.equal(quoted.body[0].errorCode, 'MALFORMED_QUERY');
  assert.match(quoted.body[0].message, /must be of type date and should not be enclosed in quotes/);
  const badId = await q("SELECT Id FROM Account WHERE Id = '123'");
  assert.equal(badId.body[0].errorCode, 'INVALID_QUERY_FILTER_OPERATOR');
  const typeOf = await q('SELECT TYPEOF What WHEN Account THEN Name END FROM Task');
  assert.equal(typeOf.body[0].errorCode, 'MALFORMED_QUERY');
  const empty = await sf('GET', `${V}/query`);
  assert.equal(empty.body[0].errorCode, 'MALFORMED_QUERY');
});

test('queryMore: Sforce-Query-Options batchSize pages via nextRecordsUrl <locator>-<offset>; queryAll sees deleted rows', async () => {
  const accounts = [];
  for (let i = 0; i < 450; i++) accounts.push({ Name: `Bulk ${String(i).padStart(3, '0')}` });
  await seed({ objects: { Account: accounts } });

  const one = await okQuery('SELECT Id, Name FROM Account');
  assert.deepEqual([one.totalSize, one.done, one.records.length, one.nextRecordsUrl], [450, true, 450, undefined], 'default batch is 2000');

  const first = await okQuery('SELECT Id, Name FROM Account ORDER BY Name', { 'sforce-query-options': 'batchSize=200' });
  assert.deepEqual([first.totalSize, first.done, first.records.length], [450, false, 200]);
  assert.match(first.nextRecordsUrl, /^\/services\/data\/v62\.0\/query\/01g[a-zA-Z0-9]{15}-200$/);
  const second = (await sf('GET', first.nextRecordsUrl)).body;
  assert.deepEqual([second.totalSize, second.done, second.records.length], [450, false, 200]);
  assert.match(second.nextRecordsUrl, /-400$/);
  const third = (await sf('GET', second.nextRecordsUrl)).body;
  assert.deepEqual([third.done, third.records.length, third.nextRecordsUrl], [true, 50, undefined]);
  const names = [...first.records, ...second.records, ...third.records].map((r) => r.Name);
  assert.equal(new Set(names).size, 450);
  assert.deepEqual(names.slice(0, 2), ['Bulk 000', 'Bulk 001']);
  assert.equal(names[449], 'Bulk 449');

  const small = await okQuery('SELECT Id FROM Account', { 'sforce-query-options': 'batchSize=10' });
  assert.equal(small.records.length, 200, 'batchSize is at least 200, as in Salesforce');

  const gone = await sf('GET', `${V}/query/01gHs0000000999AAA-200`);
  assert.deepEqual([gone.status, gone.body[0].errorCode], [400, 'INVALID_QUERY_LOCATOR']);

  const del = await sf('DELETE', `${V}/sobjects/Account/${first.records[0].Id}`);
  assert.equal(del.status, 204);
  assert.equal((await okQuery('SELECT COUNT() FROM Account')).totalSize, 449);
  const withDeleted = (await sf('GET', `${V}/queryAll?q=${encodeURIComponent('SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true')}`)).body;
  assert.deepEqual(withDeleted.records.map((r) => r.Id), [first.records[0].Id]);
});

/* ---------------- SOSL ---------------- */

test('search: FIND {term} RETURNING with field lists, WHERE and scopes; short terms refused', async () => {
  await seedSmallOrg();
  const r = await sf('GET', `${V}/search/?q=${encodeURIComponent('FIND {Acme} IN ALL FIELDS RETURNING Account(Id, Name), Opportunity(Name WHERE Amount > 5000)')}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.searchRecords.map((x) => [x.attributes.type, x.Name]), [['Account', 'Acme'], ['Opportunity', 'Acme big']]);
  const email = await sf('GET', `${V}/search?q=${encodeURIComponent('FIND {bob@acme.test} IN EMAIL FIELDS RETURNING Contact(LastName)')}`);
  assert.deepEqual(email.body.searchRecords.map((x) => x.LastName), ["O'Brien"]);
  const wild = await sf('GET', `${V}/search?q=${encodeURIComponent('FIND {Glob*} RETURNING Account(Name), Contact')}`);
  assert.deepEqual(wild.body.searchRecords.map((x) => x.attributes.type), ['Account']);
  assert.deepEqual(Object.keys(wild.body.searchRecords[0]), ['attributes', 'Name']);
  const bare = await sf('GET', `${V}/search?q=${encodeURIComponent('FIND {Smith}')}`);
  assert.deepEqual(bare.body.searchRecords.map((x) => [x.attributes.type, x.Id]), [['Contact', sid('003', 1)]]);
  const short = await sf('GET', `${V}/search?q=${encodeURIComponent('FIND {a}')}`);
  assert.equal(short.status, 400);
  const noBraces = await sf('GET', `${V}/search?q=${encodeURIComponent('FIND Acme')}`);
  assert.equal(noBraces.body[0].errorCode, 'MALFORMED_SEARCH');
});

/* ---------------- composite ---------------- */

test('composite: @{ref} references, per-subrequest headers, Location, 204 body null', async () => {
  const r = await sf('POST', `${V}/composite`, {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'refAccount', body: { Name: 'Sample Account' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'refContact', body: { LastName: 'Sample', AccountId: '@{refAccount.id}' } },
      { method: 'GET', url: `${V}/sobjects/Account/@{refAccount.id}?fields=Name`, referenceId: 'getAcc' },
      { method: 'PATCH', url: `${V}/sobjects/Contact/@{refContact.id}`, referenceId: 'upd', body: { FirstName: '@{getAcc.Name}' } },
      { method: 'GET', url: `${V}/query?q=${encodeURIComponent("SELECT Id, Name FROM Contact WHERE LastName = 'Sample'")}`, referenceId: 'q' },
    ],
  });
  assert.equal(r.status, 200);
  const [acc, con, get, upd, qr] = r.body.compositeResponse;
  assert.deepEqual(acc.httpHeaders, { Location: `${V}/sobjects/Account/${acc.body.id}` });
  assert.deepEqual([acc.httpStatusCode, acc.referenceId, acc.body.success], [201, 'refAccount', true]);
  assert.equal(con.httpStatusCode, 201);
  assert.equal(get.body.Name, 'Sample Account');
  assert.ok(get.httpHeaders['Last-Modified']);
  assert.deepEqual([upd.httpStatusCode, upd.body, upd.referenceId], [204, null, 'upd']);
  assert.equal(qr.body.records[0].Name, 'Sample Account Sample', 'FirstName came from a reference to a GET body');
  const st = await fake.state();
  assert.equal(st.salesforce.objects.Contact[0].AccountId, acc.body.id);

  const cond = await sf('POST', `${V}/composite`, { compositeRequest: [{
    method: 'PATCH', url: `${V}/sobjects/Account/${acc.body.id}`, referenceId: 'guarded',
    httpHeaders: { 'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' }, body: { Name: 'x' } }] });
  assert.equal(cond.body.compositeResponse[0].httpStatusCode, 412);
});

test('composite allOrNone: one failure rolls everything back; the others get PROCESSING_HALTED', async () => {
  const r = await sf('POST', `${V}/composite`, {
    allOrNone: true,
    compositeRequest: [
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'refAccount', body: { Name: 'Rolled back' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'refContact', body: { FirstName: 'No last name', AccountId: '@{refAccount.id}' } },
      { method: 'POST', url: `${V}/sobjects/Lead`, referenceId: 'refLead', body: { LastName: 'L', Company: 'C' } },
    ],
  });
  assert.equal(r.status, 200);
  const [a, c, l] = r.body.compositeResponse;
  const halted = [{ errorCode: 'PROCESSING_HALTED', message: 'The transaction was rolled back since another operation in the same transaction failed.' }];
  assert.deepEqual(a, { body: halted, httpHeaders: {}, httpStatusCode: 400, referenceId: 'refAccount' });
  assert.deepEqual([c.httpStatusCode, c.body[0].errorCode], [400, 'REQUIRED_FIELD_MISSING']);
  assert.deepEqual(l, { body: halted, httpHeaders: {}, httpStatusCode: 400, referenceId: 'refLead' });
  const st = await fake.state();
  assert.deepEqual([st.salesforce.objects.Account, st.salesforce.objects.Contact, st.salesforce.objects.Lead], [undefined, undefined, undefined]);

  const partial = await sf('POST', `${V}/composite`, {
    allOrNone: false,
    compositeRequest: [
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'bad', body: { Industry: 'no name' } },
      { method: 'POST', url: `${V}/sobjects/Contact`, referenceId: 'dependent', body: { LastName: 'x', AccountId: '@{bad.id}' } },
      { method: 'POST', url: `${V}/sobjects/Account`, referenceId: 'good', body: { Name: 'Kept' } },
    ],
  });
  const [bad, dep, good] = partial.body.compositeResponse;
  assert.equal(bad.body[0].errorCode, 'REQUIRED_FIELD_MISSING');
  assert.equal(dep.body[0].errorCode, 'PROCESSING_HALTED');
  assert.match(dep.body[0].message, /^Invalid reference specified\. No value for bad\.id found in bad\./);
  assert.equal(good.httpStatusCode, 201);
  assert.deepEqual((await fake.state()).salesforce.objects.Account.map((x) => x.Name), ['Kept']);

  const dup = await sf('POST', `${V}/composite`, { compositeRequest: [
    { method: 'GET', url: `${V}/limits`, referenceId: 'a' }, { method: 'GET', url: `${V}/limits`, referenceId: 'a' }] });
  assert.equal(dup.status, 400);
});

test('composite/batch: relative urls, richInput, haltOnError -> 412 BATCH_PROCESSING_HALTED, no rollback', async () => {
  const id = await create('Account', { Name: 'Before' });
  const r = await sf('POST', `${V}/composite/batch`, {
    haltOnError: true,
    batchRequests: [
      { method: 'PATCH', url: `v62.0/sobjects/account/${id}`, richInput: { Name: 'NewName', BillingPostalCode: '94105' } },
      { method: 'GET', url: `v62.0/sobjects/account/${id}?fields=Name,BillingPostalCode` },
      { method: 'PATCH', url: `v62.0/sobjects/Account/${id}`, richInput: { Nope__c: 1 } },
      { method: 'GET', url: 'v62.0/limits' },
    ],
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.hasErrors, true);
  const [p, g, bad, halted] = r.body.results;
  assert.deepEqual(p, { statusCode: 204, result: null });
  assert.deepEqual(g.result, { attributes: { type: 'Account', url: `${V}/sobjects/Account/${id}` }, Name: 'NewName', BillingPostalCode: '94105', Id: id });
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(halted, { statusCode: 412, result: [{ errorCode: 'BATCH_PROCESSING_HALTED', message: 'Batch processing halted per the request' }] });
  assert.equal((await fake.state()).salesforce.objects.Account[0].Name, 'NewName', 'batch does not roll back');
});

/* ---------------- collections ---------------- */

test('collections: create mixed types, update (lower-case id), retrieve, delete; per-record errors use statusCode', async () => {
  const c = await sf('POST', `${V}/composite/sobjects`, { allOrNone: false, records: [
    { attributes: { type: 'Account' }, Name: 'example.com' },
    { attributes: { type: 'Contact' }, LastName: 'Johnson' },
    { attributes: { type: 'Contact' }, FirstName: 'NoLast' },
    { attributes: { type: 'Account' }, Id: sid('001', 5), Name: 'with id' },
  ] });
  assert.equal(c.status, 200);
  assert.equal(c.body[0].success, true);
  assert.match(c.body[0].id, /^001/);
  assert.match(c.body[1].id, /^003/);
  assert.deepEqual(c.body[2], { success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING', message: 'Required fields are missing: [LastName]', fields: ['LastName'] }] });
  assert.equal(c.body[3].errors[0].statusCode, 'INVALID_FIELD');

  const [accId, conId] = [c.body[0].id, c.body[1].id];
  const u = await sf('PATCH', `${V}/composite/sobjects`, { allOrNone: false, records: [
    { attributes: { type: 'Account' }, id: accId, Industry: 'Tech' },
    { attributes: { type: 'Contact' }, id: conId, Email: 'bad' },
    { attributes: { type: 'Contact' }, LastName: 'no id' },
  ] });
  assert.deepEqual(u.body[0], { id: accId, success: true, errors: [] });
  assert.deepEqual(u.body[1], { id: conId, success: false, errors: [{ statusCode: 'INVALID_EMAIL_ADDRESS', message: 'Email: invalid email address: bad', fields: ['Email'] }] });
  assert.equal(u.body[2].errors[0].statusCode, 'MISSING_ARGUMENT');

  const got = await sf('POST', `${V}/composite/sobjects/Account`, { ids: [accId, sid('001', 42)], fields: ['Id', 'Name', 'Industry'] });
  assert.deepEqual(got.body, [{ attributes: { type: 'Account', url: `${V}/sobjects/Account/${accId}` }, Id: accId, Name: 'example.com', Industry: 'Tech' }, null]);
  const viaGet = await sf('GET', `${V}/composite/sobjects/Account?ids=${accId}&fields=Name`);
  assert.equal(viaGet.body[0].Name, 'example.com');
  const badField = await sf('POST', `${V}/composite/sobjects/Account`, { ids: [accId], fields: ['Nope'] });
  assert.deepEqual([badField.status, badField.body[0].errorCode], [400, 'INVALID_FIELD']);

  const d = await sf('DELETE', `${V}/composite/sobjects?ids=${accId},${conId},bogus&allOrNone=false`);
  assert.deepEqual(d.body.slice(0, 2), [{ id: accId, success: true, errors: [] }, { id: conId, success: true, errors: [] }]);
  assert.equal(d.body[2].errors[0].statusCode, 'MALFORMED_ID');
  const st = await fake.state();
  assert.deepEqual([st.salesforce.objects.Account, st.salesforce.objects.Contact], [undefined, undefined]);
});

test('collections allOrNone: a failure rolls the whole call back with ALL_OR_NONE_OPERATION_ROLLED_BACK', async () => {
  const keep = await create('Account', { Name: 'Keep' });
  const rolled = { statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] };
  const c = await sf('POST', `${V}/composite/sobjects`, { allOrNone: true, records: [
    { attributes: { type: 'Account' }, Name: 'A1' },
    { attributes: { type: 'Opportunity' }, Name: 'No stage' },
    { attributes: { type: 'Account' }, Name: 'A2' },
  ] });
  assert.deepEqual(c.body[0], { success: false, errors: [rolled] });
  assert.equal(c.body[1].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
  assert.deepEqual(c.body[2], { success: false, errors: [rolled] });
  assert.deepEqual((await fake.state()).salesforce.objects.Account.map((a) => a.Name), ['Keep']);

  const u = await sf('PATCH', `${V}/composite/sobjects`, { allOrNone: true, records: [
    { attributes: { type: 'Account' }, id: keep, Name: 'Changed' },
    { attributes: { type: 'Account' }, id: keep, CreatedDate: '2020-01-01T00:00:00.000Z' },
  ] });
  assert.deepEqual(u.body[0], { id: keep, success: false, errors: [rolled] });
  assert.equal(u.body[1].errors[0].statusCode, 'INVALID_FIELD_FOR_INSERT_UPDATE');
  assert.equal((await fake.state()).salesforce.objects.Account[0].Name, 'Keep');

  const d = await sf('DELETE', `${V}/composite/sobjects?ids=${keep},${sid('001', 77)}&allOrNone=true`);
  assert.deepEqual(d.body[0], { id: keep, success: false, errors: [rolled] });
  assert.equal(d.body[1].success, false);
  assert.equal((await fake.state()).salesforce.objects.Account.length, 1);
});

test('collections upsert by external id, and composite/tree', async () => {
  await seed({ customFields: { Account: [{ name: 'Ext__c', type: 'string', externalId: true }] }, objects: { Account: [{ Name: 'Old', Ext__c: 'E1' }] } });
  const r = await sf('PATCH', `${V}/composite/sobjects/Account/Ext__c`, { allOrNone: false, records: [
    { attributes: { type: 'Account' }, Ext__c: 'E1', Name: 'Updated' },
    { attributes: { type: 'Account' }, Ext__c: 'E2', Name: 'Inserted' },
    { attributes: { type: 'Account' }, Name: 'No key' },
  ] });
  assert.equal(r.status, 200);
  assert.deepEqual([r.body[0].created, r.body[0].success, r.body[1].created, r.body[1].success, r.body[2].success], [false, true, true, true, false]);
  const names = (await okQuery('SELECT Ext__c, Name FROM Account ORDER BY Ext__c')).records.map((a) => `${a.Ext__c}=${a.Name}`);
  assert.deepEqual(names, ['E1=Updated', 'E2=Inserted']);

  const t = await sf('POST', `${V}/composite/tree/Account`, { records: [{
    attributes: { type: 'Account', referenceId: 'ref1' }, name: 'SampleAccount',
    Contacts: { records: [{ attributes: { type: 'Contact', referenceId: 'ref2' }, lastname: 'Smith' }] },
  }] });
  assert.equal(t.status, 201);
  assert.equal(t.body.hasErrors, false);
  assert.deepEqual(t.body.results.map((x) => x.referenceId), ['ref1', 'ref2']);
  const child = (await sf('GET', `${V}/sobjects/Contact/${t.body.results[1].id}?fields=AccountId,LastName`)).body;
  assert.deepEqual([child.AccountId, child.LastName], [t.body.results[0].id, 'Smith']);
  const bad = await sf('POST', `${V}/composite/tree/Account`, { records: [{
    attributes: { type: 'Account', referenceId: 'ok' }, Name: 'Tree2',
    Contacts: { records: [{ attributes: { type: 'Contact', referenceId: 'bad' }, Email: '123' }] },
  }] });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.body.results.map((x) => x.referenceId), ['bad']);
  assert.equal((await okQuery("SELECT COUNT() FROM Account WHERE Name = 'Tree2'")).totalSize, 0, 'tree is all or none');
});

test('updated/deleted replication endpoints and state() system fields', async () => {
  const id = await create('Lead', { LastName: 'Lee', Company: 'Co' });
  await sf('DELETE', `${V}/sobjects/Lead/${id}`);
  const start = new Date(Date.now() - 3600e3).toISOString();
  const end = new Date(Date.now() + 120e3).toISOString();
  const del = await sf('GET', `${V}/sobjects/Lead/deleted?start=${start}&end=${end}`);
  assert.deepEqual(del.body.deletedRecords.map((d) => d.id), [id]);
  const upd = await sf('GET', `${V}/sobjects/Lead/updated?start=${start}&end=${end}`);
  assert.deepEqual(upd.body.ids, []);
  const st = (await fake.state()).salesforce;
  const lead = st.deleted.Lead[0];
  for (const f of ['CreatedDate', 'LastModifiedDate', 'SystemModstamp', 'CreatedById', 'LastModifiedById']) assert.ok(lead[f], f);
  assert.equal(lead.IsDeleted, true);
  assert.equal(lead.Status, 'Open - Not Contacted', 'defaulted on create');
});

test('describe and describe global honour If-Modified-Since (304 when the schema is unchanged)', async () => {
  const later = new Date(Date.now() + 60e3).toUTCString();
  const earlier = 'Mon, 01 Jan 2001 00:00:00 GMT';
  assert.equal((await sf('GET', `${V}/sobjects`, undefined, { headers: { 'if-modified-since': later } })).status, 304);
  assert.equal((await sf('GET', `${V}/sobjects/Account/describe`, undefined, { headers: { 'if-modified-since': later } })).status, 304);
  assert.equal((await sf('GET', `${V}/sobjects/Account/describe`, undefined, { headers: { 'if-modified-since': earlier } })).status, 200);
});

test('SOQL: FIELDS(), toLabel(), unknown versions and resources', async () => {
  await seedSmallOrg();
  const all = await okQuery("SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme'");
  assert.equal(all.records[0].Industry, 'Manufacturing');
  assert.equal(all.records[0].BillingAddress, null);
  const custom = await q('SELECT FIELDS(ALL) FROM Account');
  assert.equal(custom.body[0].errorCode, 'MALFORMED_QUERY', 'FIELDS(ALL) needs LIMIT 200');
  assert.equal((await okQuery('SELECT FIELDS(ALL) FROM Account LIMIT 200')).totalSize, 2);
  const label = await okQuery("SELECT toLabel(Industry) FROM Account WHERE Name = 'Acme'");
  assert.equal(label.records[0].Industry, 'Manufacturing');
  assert.equal((await sf('GET', '/services/data/v19.0/sobjects')).status, 404);
  assert.equal((await sf('GET', `${V}/nope`)).body[0].errorCode, 'NOT_FOUND');
  assert.equal((await sf('PUT', `${V}/sobjects/Account`, {})).body[0].errorCode, 'METHOD_NOT_ALLOWED');
});
