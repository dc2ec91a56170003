'use strict';
/*
 * The fake HubSpot itself, spoken to directly over raw HTTP: control API, auth, gzip, faults,
 * system fields and history, search operators, batches and 207s, associations, properties,
 * owners, OAuth and legacy routes. Later crmgate tests trust this fake, so it is tested here.
 *
 *   node --test tests/e2e/fakecrm_hubspot.test.js
 */

const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const zlib = require('node:zlib');
const net = require('node:net');
const https = require('node:https');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { startFake, requestJson } = require('./harness.js');

const TOKEN = 'pat-na1-00000000-0000-0000-0000-000000000001';
let fake;

before(async () => { fake = await startFake(); });
after(async () => { if (fake) await fake.stop(); });
beforeEach(async () => { await fake.reset(); });

/* One HubSpot call with the test token; returns {status, headers, body}. */
function hs(method, path, body, { token = TOKEN, headers = {} } = {}) {
  return requestJson(`${fake.url}${path}`, {
    method, body, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
  });
}

async function createContact(props) {
  const r = await hs('POST', '/crm/v3/objects/contacts', { properties: props, associations: [] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

async function search(type, body) {
  const r = await hs('POST', `/crm/v3/objects/${type}/search`, body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/* ---------------- control API, auth, transport ---------------- */

test('control API: seed, state, request log (control calls not logged), reset', async () => {
  await fake.seed({ hubspot: { objects: { contacts: [{ id: '101', properties: { email: 'ada@example.com', firstname: 'Ada' } }] } } });
  let st = await fake.state();
  assert.equal(st.hubspot.objects.contacts.length, 1);
  assert.equal(st.hubspot.objects.contacts[0].id, '101');
  assert.equal(st.hubspot.objects.contacts[0].properties.firstname, 'Ada');

  await hs('GET', '/crm/v3/objects/contacts/101?properties=firstname&properties=email');
  await hs('PATCH', '/crm/v3/objects/contacts/101', { properties: { firstname: 'Augusta' } });
  const log = await fake.requests();
  assert.deepEqual(log.map((r) => `${r.method} ${r.path}`), ['GET /crm/v3/objects/contacts/101', 'PATCH /crm/v3/objects/contacts/101']);
  assert.equal(log[0].query, 'properties=firstname&properties=email');
  assert.equal(log[1].headers.authorization, `Bearer ${TOKEN}`);
  assert.deepEqual(JSON.parse(log[1].body), { properties: { firstname: 'Augusta' } });
  assert.equal((await fake.requests(log[0].seq)).length, 1, '?since=N returns only later requests');

  /* DELETE ?through=N drops what a reader has counted, and nothing after it */
  const bad = await requestJson(`${fake.url}/_fake/requests?through=x`, { method: 'DELETE' });
  assert.equal(bad.status, 400);
  assert.equal((await fake.requests()).length, 2, 'a bad through drops nothing');
  await requestJson(`${fake.url}/_fake/requests?through=${log[0].seq}`, { method: 'DELETE' });
  assert.deepEqual((await fake.requests()).map((r) => r.seq), [log[1].seq]);

  await fake.clearRequests();
  assert.deepEqual(await fake.requests(), []);
  await fake.reset();
  st = await fake.state();
  assert.deepEqual(st.hubspot.objects, {});
});

test('auth: missing, empty and revoked tokens get HubSpot 401 INVALID_AUTHENTICATION', async () => {
  for (const headers of [{}, { authorization: 'Bearer ' }, { authorization: 'Basic abc' }]) {
    const r = await hs('GET', '/crm/v3/objects/contacts', undefined, { token: null, headers });
    assert.equal(r.status, 401);
    assert.match(r.headers['content-type'], /^application\/json;charset=utf-8$/);
    assert.equal(r.body.category, 'INVALID_AUTHENTICATION');
    assert.equal(r.body.status, 'error');
    assert.match(r.body.message, /^Authentication credentials not found/);
    assert.equal(r.headers['x-hubspot-correlation-id'], r.body.correlationId);
  }
  assert.equal((await hs('GET', '/crm/v3/objects/contacts')).status, 200);
  await fake.revokeToken(TOKEN);
  assert.equal((await hs('GET', '/crm/v3/objects/contacts')).status, 401);
  assert.equal((await hs('GET', '/crm/v3/objects/contacts', undefined, { token: 'pat-na1-other' })).status, 200);
});

test('transport: // collapses, rate-limit headers, gzip when asked, 204 without content-type', async () => {
  const c = await createContact({ email: 'g@example.com' });
  const r = await hs('GET', `//crm//v3/objects/contacts/${c.id}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.id, c.id);
  assert.equal(r.headers['x-hubspot-ratelimit-interval-milliseconds'], '10000');
  assert.ok(Number(r.headers['x-hubspot-ratelimit-max']) > 0);
  assert.ok(Number(r.headers['x-hubspot-ratelimit-remaining']) < Number(r.headers['x-hubspot-ratelimit-max']));
  assert.ok(r.headers['x-hubspot-ratelimit-daily-remaining'] !== undefined, 'pat- tokens get the daily pair');

  const gz = await rawGet(`/crm/v3/objects/contacts/${c.id}`, { 'accept-encoding': 'gzip, deflate' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(JSON.parse(zlib.gunzipSync(gz.body)).id, c.id);
  const plain = await rawGet(`/crm/v3/objects/contacts/${c.id}`, {});
  assert.equal(plain.headers['content-encoding'], undefined);

  const del = await hs('DELETE', `/crm/v3/objects/contacts/${c.id}`);
  assert.equal(del.status, 204);
  assert.equal(del.headers['content-type'], undefined);
  assert.equal(del.body, '');
});

test('transport: --no-gzip never compresses', async () => {
  const plain = await startFake({ gzip: false });
  try {
    const r = await rawGet('/crm/v3/objects/contacts', { 'accept-encoding': 'gzip' }, plain.url);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], undefined);
    assert.deepEqual(JSON.parse(r.body), { results: [] });
  } finally {
    await plain.stop();
  }
});

test('transport: options {gzip: always} compresses unasked CRM answers, reset restores auto', async () => {
  await fake.options({ gzip: 'always' });
  const r = await rawGet('/crm/v3/objects/contacts', {});
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.deepEqual(JSON.parse(zlib.gunzipSync(r.body)), { results: [] });
  const log = await fake.requests();
  assert.deepEqual(log.map((x) => x.response), [{ status: 200, gzip: true }]);
  await fake.reset();
  assert.equal((await rawGet('/crm/v3/objects/contacts', {})).headers['content-encoding'], undefined);
  const bad = await requestJson(`${fake.url}/_fake/options`, { method: 'POST', body: { gzip: 'sometimes' } });
  assert.equal(bad.status, 400);
});

test('transport: --tls serves https and says so in the listening line', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fakecrm-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
  if (gen.error || gen.status !== 0) return t.skip(`openssl unavailable: ${gen.error || gen.stderr}`);
  const tls = await startFake({ tls: true, cert, key });
  try {
    assert.match(tls.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const r = await new Promise((resolve, reject) => {
      https.get(`${tls.url}/crm/v3/objects/contacts`, { ca: fs.readFileSync(cert), headers: { authorization: `Bearer ${TOKEN}` } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(body) }));
      }).on('error', reject);
    });
    assert.deepEqual(r, { status: 200, body: { results: [] } });
  } finally {
    await tls.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('limits.enforce: the 10 s rolling window answers the exact TEN_SECONDLY_ROLLING 429', async () => {
  await fake.seed({ hubspot: { limits: { tenSecondly: 3, enforce: true } } });
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await hs('GET', '/crm/v3/objects/contacts')).status);
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  const r = await hs('GET', '/crm/v3/objects/contacts');
  assert.equal(r.body.policyName, 'TEN_SECONDLY_ROLLING');
  assert.equal(r.headers['x-hubspot-ratelimit-max'], '3');
  assert.equal(r.headers['x-hubspot-ratelimit-remaining'], '0');
});

test('searchLagMs: fresh writes are invisible to search until the lag has passed', async () => {
  await fake.seed({ hubspot: { searchLagMs: 400 } });
  const c = await createContact({ email: 'lag@example.com' });
  assert.equal((await search('contacts', {})).total, 0);
  assert.equal((await hs('GET', `/crm/v3/objects/contacts/${c.id}`)).status, 200, 'reads are immediate');
  await new Promise((res) => setTimeout(res, 450));
  assert.deepEqual(ids(await search('contacts', {})), [c.id]);
});

function rawGet(path, headers, base = fake.url) {
  return new Promise((resolve, reject) => {
    http.get(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

/* ---------------- faults ---------------- */

test('fault ratelimit: 429 with the exact TEN_SECONDLY_ROLLING body the SDK retries on', async () => {
  await fake.fault({ match: { method: 'GET', path: '^/crm/v3/objects/contacts$' }, action: 'ratelimit' });
  const r = await hs('GET', '/crm/v3/objects/contacts');
  assert.equal(r.status, 429);
  assert.equal(r.body.policyName, 'TEN_SECONDLY_ROLLING');
  assert.equal(r.body.errorType, 'RATE_LIMIT');
  assert.equal(r.body.status, 'error');
  assert.equal(r.body.message, 'You have reached your ten_secondly_rolling limit.');
  assert.equal(r.headers['x-hubspot-correlation-id'], r.body.correlationId);
  assert.equal((await hs('GET', '/crm/v3/objects/contacts')).status, 200, 'count defaults to 1');
});

test('fault status: default HubSpot 500 body, custom status/body, method and path matching, count', async () => {
  await fake.fault({ match: { path: 'contacts' }, action: 'status', count: 2 });
  for (let i = 0; i < 2; i++) {
    const r = await hs('GET', '/crm/v3/objects/contacts');
    assert.equal(r.status, 500);
    assert.equal(r.body.category, 'INTERNAL_ERROR');
    assert.equal(typeof r.body.correlationId, 'string');
  }
  assert.equal((await hs('GET', '/crm/v3/objects/contacts')).status, 200);

  await fake.fault({ match: { method: 'POST' }, action: 'status', status: 503, body: { status: 'error', message: 'busy', category: 'X' }, count: -1 });
  assert.equal((await hs('GET', '/crm/v3/objects/companies')).status, 200, 'method filter');
  for (let i = 0; i < 3; i++) assert.equal((await hs('POST', '/crm/v3/objects/companies', { properties: {} })).status, 503);
  await fake.clearFaults();
  assert.equal((await hs('POST', '/crm/v3/objects/companies', { properties: {} })).status, 201);
});

test('fault latency delays, then answers normally', async () => {
  await fake.fault({ action: 'latency', ms: 300 });
  const t0 = Date.now();
  const r = await hs('GET', '/crm/v3/objects/contacts');
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 >= 290, `took ${Date.now() - t0} ms`);
});

test('faults reset, close and garbage break the connection in their own ways', async () => {
  await fake.fault({ action: 'reset' });
  await assert.rejects(hs('GET', '/crm/v3/objects/contacts'), (e) => e.code === 'ECONNRESET');

  await fake.fault({ action: 'close' });
  await assert.rejects(hs('GET', '/crm/v3/objects/contacts'), (e) => /aborted|ECONNRESET|premature/i.test(`${e.code} ${e.message}`));

  await fake.fault({ action: 'garbage' });
  const text = await rawSocket('GET /crm/v3/objects/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n');
  assert.ok(!text.startsWith('HTTP/'), `garbage must not look like HTTP: ${JSON.stringify(text)}`);
  assert.ok(text.length > 0);

  assert.equal((await hs('GET', '/crm/v3/objects/contacts')).status, 200, 'faults are used up');
  assert.equal((await fake.requests()).length, 4, 'faulted requests are logged too');
});

test('bad fault specs are refused', async () => {
  for (const spec of [{ action: 'explode' }, { action: 'latency' }, { action: 'status', match: { path: '(' } }, { action: 'status', count: 0 }]) {
    const r = await requestJson(`${fake.url}/_fake/faults`, { method: 'POST', body: spec });
    assert.equal(r.status, 400, JSON.stringify(spec));
  }
});

function rawSocket(request) {
  return new Promise((resolve, reject) => {
    const s = net.connect(fake.port, '127.0.0.1', () => s.write(request));
    let out = '';
    s.on('data', (d) => { out += d.toString('latin1'); });
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
}

/* ---------------- records, system fields, history ---------------- */

test('create/update/delete keep system fields and history', async () => {
  const c = await createContact({ email: 'Ada@Example.com', firstname: 'Ada', lifecyclestage: 'lead' });
  assert.match(c.id, /^\d+$/);
  assert.equal(c.properties.hs_object_id, c.id);
  assert.equal(c.properties.email, 'ada@example.com');
  assert.equal(c.properties.createdate, c.createdAt);
  assert.equal(c.properties.lastmodifieddate, c.updatedAt);
  assert.match(c.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(c.archived, false);

  const u = await hs('PATCH', `/crm/v3/objects/contacts/${c.id}`, { properties: { lifecyclestage: 'opportunity', firstname: '' } });
  assert.equal(u.status, 200);
  assert.deepEqual(Object.keys(u.body.properties).sort(), ['createdate', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lifecyclestage']);
  assert.equal(u.body.properties.firstname, '', 'empty string clears');
  assert.equal(u.body.createdAt, c.createdAt);
  assert.ok(Date.parse(u.body.updatedAt) > Date.parse(c.updatedAt));

  const g = await hs('GET', `/crm/v3/objects/contacts/${c.id}?propertiesWithHistory=lifecyclestage,unknownprop&properties=phone`);
  const hist = g.body.propertiesWithHistory.lifecyclestage;
  assert.deepEqual(hist.map((h) => h.value), ['opportunity', 'lead'], 'newest first');
  assert.equal(hist[0].sourceType, 'API');
  assert.ok(hist[0].sourceId);
  assert.equal(hist[0].timestamp, u.body.updatedAt);
  assert.equal(g.body.properties.phone, null, 'requested but unset -> null');
  assert.equal(g.body.propertiesWithHistory.unknownprop, undefined);

  const company = (await hs('POST', '/crm/v3/objects/companies', { properties: { name: 'Acme' } })).body;
  assert.ok(company.properties.hs_lastmodifieddate, 'companies use hs_lastmodifieddate');
  assert.equal(company.properties.lastmodifieddate, undefined);
  const note = (await hs('POST', '/crm/v3/objects/notes', { properties: { hs_note_body: 'hi', hs_timestamp: '1700000000000' } })).body;
  assert.ok(note.properties.hs_createdate, 'engagements use hs_createdate');
  assert.equal(note.properties.hs_timestamp, '2023-11-14T22:13:20.000Z', 'datetimes normalised to ISO');

  assert.equal((await hs('DELETE', `/crm/v3/objects/contacts/${c.id}`)).status, 204);
  assert.equal((await hs('GET', `/crm/v3/objects/contacts/${c.id}`)).status, 404);
  const arch = await hs('GET', `/crm/v3/objects/contacts/${c.id}?archived=true`);
  assert.equal(arch.status, 200);
  assert.equal(arch.body.archived, true);
  assert.ok(arch.body.archivedAt);
  assert.equal((await hs('PATCH', `/crm/v3/objects/contacts/${c.id}`, { properties: { firstname: 'x' } })).status, 404);
});

test('writes with a seeded CRM_UI token look like human edits in history', async () => {
  await fake.seed({ hubspot: {
    objects: { deals: [{ id: '300', properties: { dealname: 'Big', amount: '10' } }] },
    tokens: { 'pat-ui-human': { sourceType: 'CRM_UI', sourceId: 'userId:123', updatedByUserId: 123 } },
  } });
  await hs('PATCH', '/crm/v3/objects/deals/300', { properties: { amount: '20' } }, { token: 'pat-ui-human' });
  await hs('PATCH', '/crm/v3/objects/deals/300', { properties: { amount: '30' } });
  const h = (await hs('GET', '/crm/v3/objects/deals/300?propertiesWithHistory=amount')).body.propertiesWithHistory.amount;
  assert.deepEqual(h.map((x) => [x.value, x.sourceType]), [['30', 'API'], ['20', 'CRM_UI'], ['10', 'IMPORT']]);
  assert.equal(h[1].updatedByUserId, 123);
  assert.equal(h[1].sourceId, 'userId:123');
});

test('read options: default sets, repeated and comma-separated params, idProperty, type spellings, versions', async () => {
  const c = await createContact({ email: 'ada@example.com', firstname: 'Ada', lastname: 'L', phone: '1' });
  const d = (await hs('GET', `/crm/v3/objects/contacts/${c.id}`)).body;
  assert.deepEqual(Object.keys(d.properties).sort(), ['createdate', 'email', 'firstname', 'hs_object_id', 'lastmodifieddate', 'lastname']);
  const rep = (await hs('GET', `/crm/v3/objects/contacts/${c.id}?properties=phone&properties=email`)).body;
  const csv = (await hs('GET', `/crm/v3/objects/contacts/${c.id}?properties=phone,email`)).body;
  assert.deepEqual(rep.properties, csv.properties);
  assert.deepEqual(Object.keys(csv.properties).sort(), ['createdate', 'email', 'hs_object_id', 'lastmodifieddate', 'phone']);
  for (const p of [`/crm/v3/objects/contact/${c.id}`, `/crm/v3/objects/0-1/${c.id}`, `/crm/v3/objects/CONTACTS/${c.id}`,
    `/crm/objects/2026-03/contacts/${c.id}`, '/crm/v3/objects/contacts/ada%40example.com?idProperty=email']) {
    const r = await hs('GET', p);
    assert.equal(r.status, 200, p);
    assert.equal(r.body.id, c.id, p);
  }
  const bad = await hs('GET', '/crm/v3/objects/widgets/1');
  assert.equal(bad.status, 404);
  assert.equal(bad.body.category, 'OBJECT_NOT_FOUND');
  assert.equal((await hs('GET', '/crm/v3/objects/contacts/x?idProperty=firstname')).status, 400, 'idProperty must be unique');
});

test('list paging with limit/after covers every record once', async () => {
  for (let i = 0; i < 7; i++) await createContact({ email: `p${i}@example.com` });
  const seen = [];
  let after;
  let pages = 0;
  do {
    const r = await hs('GET', `/crm/v3/objects/contacts?limit=3${after ? `&after=${after}` : ''}`);
    assert.equal(r.status, 200);
    seen.push(...r.body.results.map((x) => x.properties.email));
    after = r.body.paging && r.body.paging.next.after;
    pages++;
  } while (after);
  assert.equal(pages, 3);
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6].map((i) => `p${i}@example.com`));
});

test('validation errors: unknown, read-only, bad option, duplicate email, bad JSON', async () => {
  const c = await createContact({ email: 'ada@example.com' });
  let r = await hs('PATCH', `/crm/v3/objects/contacts/${c.id}`, { properties: { foo: 'x', firstname: 'ok' } });
  assert.equal(r.status, 400);
  assert.equal(r.body.category, 'VALIDATION_ERROR');
  assert.match(r.body.message, /^Property values were not valid: /);
  const inner = JSON.parse(r.body.message.replace(/^Property values were not valid: /, ''));
  assert.deepEqual(inner.map((x) => [x.name, x.error]), [['foo', 'PROPERTY_DOESNT_EXIST']]);
  assert.equal(r.body.errors[0].code, 'PROPERTY_DOESNT_EXIST');
  assert.equal((await hs('GET', `/crm/v3/objects/contacts/${c.id}?properties=firstname`)).body.properties.firstname, null, 'nothing written');

  r = await hs('PATCH', `/crm/v3/objects/contacts/${c.id}`, { properties: { createdate: '2020-01-01', hs_object_id: '5' } });
  assert.equal(r.status, 400);
  assert.deepEqual(r.body.errors.map((e) => [e.in, e.code]), [['createdate', 'READ_ONLY_VALUE'], ['hs_object_id', 'READ_ONLY_VALUE']]);

  r = await hs('PATCH', `/crm/v3/objects/contacts/${c.id}`, { properties: { lifecyclestage: 'Lead' } });
  assert.equal(r.status, 400);
  assert.equal(r.body.errors[0].code, 'INVALID_OPTION', 'labels are not values');

  r = await hs('POST', '/crm/v3/objects/contacts', { properties: { email: 'ADA@example.com' }, associations: [] });
  assert.equal(r.status, 409);
  assert.equal(r.body.category, 'CONFLICT');
  assert.equal(r.body.message, `Contact already exists. Existing ID: ${c.id}`);

  r = await requestJson(`${fake.url}/crm/v3/objects/contacts`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
  assert.equal(r.status, 400);
  const raw = await new Promise((resolve, reject) => {
    const req = http.request(`${fake.url}/crm/v3/objects/contacts`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end('{"properties":');
  });
  assert.equal(raw.status, 400);
  assert.equal(raw.body.category, 'VALIDATION_ERROR');
});

/* ---------------- batch ---------------- */

test('batch read 200 and 207 with OBJECT_NOT_FOUND errors', async () => {
  const a = await createContact({ email: 'a@example.com' });
  let r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: [{ id: a.id }], properties: ['email'], propertiesWithHistory: ['email'] });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'COMPLETE');
  assert.ok(r.body.startedAt && r.body.completedAt);
  assert.equal(r.body.results[0].propertiesWithHistory.email[0].value, 'a@example.com');
  r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: [{ id: a.id }, { id: '999' }], properties: [] });
  assert.equal(r.status, 207);
  assert.equal(r.body.numErrors, 1);
  assert.equal(r.body.errors[0].category, 'OBJECT_NOT_FOUND');
  assert.deepEqual(r.body.errors[0].context, { ids: ['999'] });
  r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: [{ id: 'a@example.com' }], idProperty: 'email', properties: ['email'] });
  assert.equal(r.status, 200);
  assert.equal(r.body.results[0].id, a.id);
  /* property histories: 50 inputs at most (HubSpot's 400, PipedreamHQ/pipedream#8462); 100 without */
  const many = (n) => Array.from({ length: n }, (_, i) => ({ id: String(900000 + i) }));
  r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: many(51), properties: ['email'], propertiesWithHistory: ['email'] });
  assert.equal(r.status, 400);
  assert.match(r.body.message, /property histories is 50/);
  r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: many(50), properties: ['email'], propertiesWithHistory: ['email'] });
  assert.equal(r.status, 207);
  r = await hs('POST', '/crm/v3/objects/contacts/batch/read', { inputs: many(100), properties: ['email'] });
  assert.equal(r.status, 207);
});

test('batch create 201; one bad input fails all unless every input has objectWriteTraceId (207)', async () => {
  let r = await hs('POST', '/crm/v3/objects/companies/batch/create', { inputs: [{ properties: { name: 'A' } }, { properties: { name: 'B' } }] });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body.results.map((x) => x.properties.name), ['A', 'B']);

  r = await hs('POST', '/crm/v3/objects/companies/batch/create', { inputs: [{ properties: { name: 'C' } }, { properties: { nope: 'x' } }] });
  assert.equal(r.status, 400);
  assert.equal((await fake.state()).hubspot.objects.companies.length, 2, 'nothing created');

  r = await hs('POST', '/crm/v3/objects/companies/batch/create', { inputs: [{ properties: { name: 'C' }, objectWriteTraceId: 't1' }, { properties: { nope: 'x' }, objectWriteTraceId: 't2' }] });
  assert.equal(r.status, 207);
  assert.equal(r.body.numErrors, 1);
  assert.equal(r.body.results[0].properties.name, 'C');
  assert.equal(r.body.results[0].objectWriteTraceId, 't1');
  assert.equal(r.body.errors[0].category, 'VALIDATION_ERROR');
  assert.deepEqual(r.body.errors[0].context.objectWriteTraceId, ['t2']);
  assert.equal((await fake.state()).hubspot.objects.companies.length, 3);

  r = await hs('POST', '/crm/v3/objects/companies/batch/create', { inputs: Array.from({ length: 101 }, () => ({ properties: {} })) });
  assert.equal(r.status, 400, '100 inputs at most');
});

test('batch update 200/207, upsert creates and updates, archive 204', async () => {
  const a = await createContact({ email: 'a@example.com', firstname: 'A' });
  let r = await hs('POST', '/crm/v3/objects/contacts/batch/update', { inputs: [{ id: a.id, properties: { firstname: 'A2' } }, { id: '424242', properties: { firstname: 'X' } }] });
  assert.equal(r.status, 207);
  assert.equal(r.body.results[0].properties.firstname, 'A2');
  assert.deepEqual(r.body.errors[0].context.ids, ['424242']);

  r = await hs('POST', '/crm/v3/objects/contacts/batch/upsert', { inputs: [
    { id: 'a@example.com', idProperty: 'email', properties: { lastname: 'Up' } },
    { id: 'new@example.com', idProperty: 'email', properties: { firstname: 'N' } }] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.results.map((x) => [x.new, x.properties.email ?? null]), [[false, null], [true, 'new@example.com']]);
  assert.equal(r.body.results[0].id, a.id);
  r = await hs('POST', '/crm/v3/objects/contacts/batch/upsert', { inputs: [{ id: 'x', idProperty: 'firstname', properties: {} }] });
  assert.equal(r.status, 400, 'idProperty must be unique');

  const st1 = (await fake.state()).hubspot.objects.contacts;
  assert.equal(st1.length, 2);
  assert.equal(st1.find((x) => x.id === a.id).properties.lastname, 'Up');

  r = await hs('POST', '/crm/v3/objects/contacts/batch/archive', { inputs: st1.map((x) => ({ id: x.id })) });
  assert.equal(r.status, 204);
  assert.ok((await fake.state()).hubspot.objects.contacts.every((x) => x.archived));
});

/* ---------------- search ---------------- */

async function seedSearch() {
  await fake.seed({ hubspot: { objects: { deals: [
    { id: '1', properties: { dealname: 'Alpha renewal', amount: '100', dealstage: 'won', closedate: '2024-01-10T00:00:00.000Z' } },
    { id: '2', properties: { dealname: 'Beta new logo', amount: '250', dealstage: 'open', closedate: '2024-02-10T00:00:00.000Z' } },
    { id: '3', properties: { dealname: 'Gamma expansion', amount: '40', dealstage: 'open' } },
    { id: '4', properties: { dealname: 'delta renewal', amount: '1000', dealstage: 'lost', closedate: '2024-03-10T00:00:00.000Z' } },
  ] } } });
}

const ids = (body) => body.results.map((r) => r.id);
const f1 = (propertyName, operator, extra) => ({ filterGroups: [{ filters: [{ propertyName, operator, ...extra }] }] });

test('search: every operator', async () => {
  await seedSearch();
  const cases = [
    [f1('dealstage', 'EQ', { value: 'OPEN' }), ['2', '3']],
    [f1('dealstage', 'NEQ', { value: 'open' }), ['1', '4']],
    [f1('amount', 'LT', { value: '100' }), ['3']],
    [f1('amount', 'LTE', { value: '100' }), ['1', '3']],
    [f1('amount', 'GT', { value: '250' }), ['4']],
    [f1('amount', 'GTE', { value: '250' }), ['2', '4']],
    [f1('amount', 'BETWEEN', { value: '50', highValue: '300' }), ['1', '2']],
    [f1('closedate', 'BETWEEN', { value: String(Date.parse('2024-01-01')), highValue: '2024-02-28T00:00:00Z' }), ['1', '2']],
    [f1('dealstage', 'IN', { values: ['won', 'lost'] }), ['1', '4']],
    [f1('dealstage', 'NOT_IN', { values: ['won', 'lost'] }), ['2', '3']],
    [f1('closedate', 'HAS_PROPERTY'), ['1', '2', '4']],
    [f1('closedate', 'NOT_HAS_PROPERTY'), ['3']],
    [f1('dealname', 'CONTAINS_TOKEN', { value: 'renewal' }), ['1', '4']],
    [f1('dealname', 'CONTAINS_TOKEN', { value: 'exp*' }), ['3']],
    [f1('dealname', 'NOT_CONTAINS_TOKEN', { value: 'renewal' }), ['2', '3']],
  ];
  for (const [body, want] of cases) {
    const r = await search('deals', body);
    assert.deepEqual(ids(r), want, JSON.stringify(body));
    assert.equal(r.total, want.length);
  }
  const or = await search('deals', { filterGroups: [
    { filters: [{ propertyName: 'dealstage', operator: 'EQ', value: 'won' }] },
    { filters: [{ propertyName: 'dealstage', operator: 'EQ', value: 'open' }, { propertyName: 'amount', operator: 'GT', value: '100' }] }] });
  assert.deepEqual(ids(or), ['1', '2'], 'groups OR, filters AND');
  const bad = await hs('POST', '/crm/v3/objects/deals/search', f1('closedate', 'NOT_HAS_PROPERTY', { value: 'x' }));
  assert.equal(bad.status, 400, 'NOT_HAS_PROPERTY with a value');
});

test('search: sorts in both forms, query, properties, paging, total, limits', async () => {
  await seedSearch();
  assert.deepEqual(ids(await search('deals', { sorts: ['-amount'] })), ['4', '2', '1', '3']);
  assert.deepEqual(ids(await search('deals', { sorts: [{ propertyName: 'amount', direction: 'ASCENDING' }] })), ['3', '1', '2', '4']);
  assert.deepEqual(ids(await search('deals', { sorts: ['dealname'] })), ['1', '2', '4', '3']);
  assert.deepEqual(ids(await search('deals', { query: 'renew' })), ['1', '4']);
  const p = await search('deals', { properties: ['amount'], limit: 1 });
  assert.deepEqual(Object.keys(p.results[0].properties).sort(), ['amount', 'createdate', 'hs_lastmodifieddate', 'hs_object_id']);
  assert.equal(p.total, 4);
  assert.deepEqual(p.paging.next, { after: '1', link: '?after=1' });
  const last = await search('deals', { limit: 2, after: '2' });
  assert.deepEqual(ids(last), ['3', '4']);
  assert.equal(last.paging, undefined, 'no paging on the last page');

  let r = await hs('POST', '/crm/v3/objects/deals/search', { limit: 100, after: '9950' });
  assert.equal(r.status, 400, 'no paging past 10,000');
  r = await hs('POST', '/crm/v3/objects/deals/search', { limit: 201 });
  assert.equal(r.status, 400);
  r = await hs('POST', '/crm/v3/objects/deals/search', { filterGroups: Array.from({ length: 6 }, () => ({ filters: [] })) });
  assert.equal(r.status, 400, 'at most 5 groups');
  r = await hs('POST', '/crm/v3/objects/deals/search', { filterGroups: [{ filters: Array.from({ length: 11 }, () => ({ propertyName: 'amount', operator: 'HAS_PROPERTY' })) }] });
  assert.equal(r.status, 400, 'at most 10 filters per group');
});

test('search: associations.<type> filter and archived records excluded', async () => {
  await fake.seed({ hubspot: {
    objects: { contacts: [{ id: '11', properties: { email: 'a@x.io' } }, { id: '12', properties: { email: 'b@x.io' } }], companies: [{ id: '21', properties: { name: 'X' } }] },
    associations: [{ from: { type: 'contacts', id: '11' }, to: { type: 'companies', id: '21' } }],
  } });
  assert.deepEqual(ids(await search('contacts', f1('associations.company', 'EQ', { value: '21' }))), ['11']);
  await hs('DELETE', '/crm/v3/objects/contacts/11');
  assert.deepEqual(ids(await search('contacts', {})), ['12']);
});

/* ---------------- merge, associations ---------------- */

test('merge: loser resolves to the primary, empty values filled, associations moved', async () => {
  await fake.seed({ hubspot: {
    objects: { contacts: [{ id: '1', properties: { email: 'p@x.io', firstname: 'P' } }, { id: '2', properties: { email: 'l@x.io', phone: '555' } }], companies: [{ id: '9', properties: { name: 'Co' } }] },
    associations: [{ from: { type: 'contacts', id: '2' }, to: { type: 'companies', id: '9' } }],
  } });
  const m = await hs('POST', '/crm/v3/objects/contacts/merge', { primaryObjectId: '1', objectIdToMerge: '2' });
  assert.equal(m.status, 200);
  assert.equal(m.body.id, '1');
  assert.equal(m.body.properties.phone, '555');
  assert.equal(m.body.properties.email, 'p@x.io');
  const g = await hs('GET', '/crm/v3/objects/contacts/2?properties=hs_merged_object_ids');
  assert.equal(g.body.id, '1');
  assert.equal(g.body.properties.hs_merged_object_ids, '2');
  const l = await hs('GET', '/crm/v4/objects/contacts/1/associations/companies');
  assert.deepEqual(l.body.results.map((x) => x.toObjectId), [9]);
});

test('v4 associations: labelled PUT 201, default PUT 200, list, wrong direction 400, DELETE 204, batch', async () => {
  await fake.seed({ hubspot: { objects: { contacts: [{ id: '1', properties: {} }, { id: '2', properties: {} }], companies: [{ id: '9', properties: {} }], deals: [{ id: '5', properties: {} }] } } });
  let r = await hs('PUT', '/crm/v4/objects/contacts/1/associations/companies/9', [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]);
  assert.equal(r.status, 201);
  assert.deepEqual(r.body, { fromObjectTypeId: '0-1', fromObjectId: 1, toObjectTypeId: '0-2', toObjectId: 9, labels: ['Primary'] });
  r = await hs('GET', '/crm/v4/objects/companies/9/associations/contacts');
  assert.deepEqual(r.body.results, [{ toObjectId: 1, associationTypes: [
    { category: 'HUBSPOT_DEFINED', typeId: 2, label: 'Primary' }, { category: 'HUBSPOT_DEFINED', typeId: 280, label: null }] }]);
  r = await hs('GET', '/crm/v3/objects/contacts/1?associations=companies');
  assert.deepEqual(r.body.associations.companies.results.map((x) => x.type).sort(), ['contact_to_company', 'contact_to_company_unlabeled']);

  r = await hs('PUT', '/crm/v4/objects/deals/5/associations/companies/9', [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }]);
  assert.equal(r.status, 400, 'contact->company type id on a deal (nodejs#646)');
  assert.equal(r.body.message, 'One or more associations are invalid');
  assert.deepEqual(r.body.context.INVALID_OBJECT_IDS, ['CONTACT=5 is not valid']);

  r = await hs('PUT', '/crm/v4/objects/deals/5/associations/default/contacts/2');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.results[0].associationSpec, { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 3 });

  r = await hs('POST', '/crm/v4/associations/contacts/companies/batch/create', { inputs: [
    { from: { id: '2' }, to: { id: '9' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] },
    { from: { id: '404' }, to: { id: '9' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }] });
  assert.equal(r.status, 207);
  assert.equal(r.body.results.length, 1);
  assert.equal(r.body.numErrors, 1);
  r = await hs('POST', '/crm/v4/associations/contacts/companies/batch/read', { inputs: [{ id: '1' }, { id: '2' }] });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.results.map((x) => [x.from.id, x.to.map((t) => t.toObjectId)]), [['1', [9]], ['2', [9]]]);

  r = await hs('POST', '/crm/v4/associations/contacts/companies/batch/labels/archive', { inputs: [{ from: { id: '1' }, to: { id: '9' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 1 }] }] });
  assert.equal(r.status, 204);
  r = await hs('GET', '/crm/v4/objects/contacts/1/associations/companies');
  assert.deepEqual(r.body.results[0].associationTypes.map((t) => t.typeId), [279], 'only the label removed');
  assert.equal((await hs('DELETE', '/crm/v4/objects/contacts/1/associations/companies/9')).status, 204);
  assert.deepEqual((await hs('GET', '/crm/v4/objects/contacts/1/associations/companies')).body.results, []);
  r = await hs('POST', '/crm/v4/associations/contacts/companies/batch/archive', { inputs: [{ from: { id: '2' }, to: [{ id: '9' }] }] });
  assert.equal(r.status, 204);
  const st = await fake.state();
  assert.deepEqual(st.hubspot.associations.map((a) => `${a.from.type}:${a.from.id}->${a.to.type}:${a.to.id}`).sort(), ['contacts:2->deals:5', 'deals:5->contacts:2']);
});

test('create with associations associates; bad association type rejects the create', async () => {
  await fake.seed({ hubspot: { objects: { companies: [{ id: '9', properties: { name: 'Co' } }] } } });
  const c = await createContactWith([{ to: { id: '9' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 279 }] }]);
  assert.equal(c.status, 201);
  const l = await hs('GET', `/crm/v4/objects/contacts/${c.body.id}/associations/companies`);
  assert.deepEqual(l.body.results.map((x) => x.toObjectId), [9]);
  const bad = await createContactWith([{ to: { id: '9' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 341 }] }]);
  assert.equal(bad.status, 400);
  assert.equal((await fake.state()).hubspot.objects.contacts.length, 1);
});

function createContactWith(associations) {
  return hs('POST', '/crm/v3/objects/contacts', { properties: { firstname: 'W' }, associations });
}

/* ---------------- properties, owners, OAuth, legacy ---------------- */

test('properties API: list, get, create 201 / 409, unknown 404, new property writable', async () => {
  let r = await hs('GET', '/crm/v3/properties/contacts');
  const email = r.body.results.find((p) => p.name === 'email');
  assert.equal(email.hasUniqueValue, true);
  const createdate = r.body.results.find((p) => p.name === 'createdate');
  assert.equal(createdate.modificationMetadata.readOnlyValue, true);
  r = await hs('GET', '/crm/v3/properties/deals/dealstage');
  assert.equal(r.body.externalOptions, true);
  assert.equal((await hs('GET', '/crm/v3/properties/deals/nope')).status, 404);
  const def = { name: 'favorite_color', label: 'Favorite color', type: 'enumeration', fieldType: 'select', groupName: 'contactinformation', options: [{ label: 'Red', value: 'red' }] };
  r = await hs('POST', '/crm/v3/properties/contacts', def);
  assert.equal(r.status, 201);
  assert.equal(r.body.hubspotDefined, false);
  assert.equal((await hs('POST', '/crm/v3/properties/contacts', def)).status, 409);
  const c = await createContact({ favorite_color: 'red' });
  assert.equal(c.properties.favorite_color, 'red');
  assert.equal((await hs('POST', '/crm/v3/objects/contacts', { properties: { favorite_color: 'blue' } })).status, 400);
});

test('owners: list, email filter, get by id and userId', async () => {
  await fake.seed({ hubspot: { owners: [{ id: '61', email: 'a@x.io', firstName: 'A', userId: 7 }, { id: '62', email: 'b@x.io', userId: 8 }] } });
  let r = await hs('GET', '/crm/v3/owners');
  assert.deepEqual(r.body.results.map((o) => o.id), ['61', '62']);
  assert.equal(r.body.results[0].type, 'PERSON');
  r = await hs('GET', '/crm/v3/owners?email=b@x.io');
  assert.deepEqual(r.body.results.map((o) => o.id), ['62']);
  assert.equal((await hs('GET', '/crm/v3/owners/61')).body.email, 'a@x.io');
  assert.equal((await hs('GET', '/crm/v3/owners/8?idProperty=userId')).body.id, '62');
  assert.equal((await hs('GET', '/crm/v3/owners/99')).status, 404);
});

test('OAuth: refresh issues a token that works, then expires with EXPIRED_AUTHENTICATION', async () => {
  await fake.seed({ hubspot: { oauth: { clients: [{ clientId: 'cid', clientSecret: 'sec' }], expiresIn: 1 } } });
  const form = (body) => postForm('/oauth/v1/token', body);
  let r = await form('grant_type=refresh_token&client_id=cid&client_secret=bad&refresh_token=rt1');
  assert.equal(r.status, 400);
  assert.equal(r.body.status, 'BAD_CLIENT_SECRET');
  r = await form('grant_type=refresh_token&client_id=cid&client_secret=sec&refresh_token=rt1');
  assert.equal(r.status, 200);
  assert.equal(r.body.token_type, 'bearer');
  assert.equal(r.body.expires_in, 1);
  const at = r.body.access_token;
  assert.equal((await hs('GET', '/crm/v3/objects/contacts', undefined, { token: at })).status, 200);
  await new Promise((res) => setTimeout(res, 1100));
  r = await hs('GET', '/crm/v3/objects/contacts', undefined, { token: at });
  assert.equal(r.status, 401);
  assert.equal(r.body.category, 'EXPIRED_AUTHENTICATION');
  assert.match(r.body.message, /^The OAuth token used to make this call expired \d+ second\(s\) ago\.$/);
  assert.equal(r.headers['x-hubspot-ratelimit-daily'], undefined, 'no daily headers on OAuth calls');
});

function postForm(path, text) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' } }, (res) => {
      let t = '';
      res.on('data', (d) => { t += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(t) }));
    });
    req.on('error', reject);
    req.end(text);
  });
}

test('legacy contacts v1: profile read, update 204, createOrUpdate, create 409', async () => {
  const c = await createContact({ email: 'old@x.io', firstname: 'Old' });
  let r = await hs('GET', `/contacts/v1/contact/vid/${c.id}/profile`);
  assert.equal(r.status, 200);
  assert.equal(r.body.vid, Number(c.id));
  assert.equal(r.body.properties.firstname.value, 'Old');
  assert.equal(r.body.properties.firstname.versions[0]['source-type'], 'API');
  r = await hs('POST', '/contacts/v1/contact/email/old@x.io/profile', { properties: [{ property: 'firstname', value: 'New' }] });
  assert.equal(r.status, 204);
  assert.equal((await fake.state()).hubspot.objects.contacts[0].properties.firstname, 'New');
  r = await hs('POST', '/contacts/v1/contact/createOrUpdate/email/fresh@x.io/', { properties: [{ property: 'lastname', value: 'F' }] });
  assert.equal(r.status, 200);
  assert.equal(r.body.isNew, true);
  r = await hs('POST', '/contacts/v1/contact', { properties: [{ property: 'email', value: 'old@x.io' }] });
  assert.equal(r.status, 409);
  assert.equal(r.body.error, 'CONTACT_EXISTS');
  assert.equal((await hs('GET', '/contacts/v1/contact/vid/1/profile')).status, 404);

  await fake.seed({ hubspot: { objects: { companies: [{ id: '77', properties: { name: 'Old Co' } }], deals: [{ id: '78', properties: { dealname: 'Old deal' } }] } } });
  r = await hs('PUT', '/companies/v2/companies/77', { properties: [{ name: 'name', value: 'New Co' }] });
  assert.equal(r.status, 200);
  assert.equal(r.body.companyId, 77);
  assert.equal(r.body.properties.name.value, 'New Co');
  r = await hs('PUT', '/deals/v1/deal/78', { properties: [{ name: 'amount', value: '5' }] });
  assert.equal(r.status, 200);
  assert.equal(r.body.dealId, 78);
  r = await hs('PUT', '/deals/v1/deal/78', { properties: [{ name: 'bogus', value: '5' }] });
  assert.equal(r.status, 400);
  const st = (await fake.state()).hubspot.objects;
  assert.equal(st.companies[0].properties.name, 'New Co');
  assert.equal(st.deals[0].properties.amount, '5');
});
